#!/usr/bin/env bash
# Sharing policy benchmark: field decisions per second for an export-sized
# batch (10,000 persons × 20 fields) on one core: the service's standing is
# compiled once per batch, then every person and field is decided. Bar:
# 5,000,000 decisions a second. Prints the figure and appends it to
# bench/RESULTS.md (BENCH_RECORD=0 to only print).
#
#   bash bench/policy.sh [PERSONS] [SECONDS]     # defaults: 10,000 persons, 3 s
set -euo pipefail
cd "$(dirname "$0")/.."
persons="${1:-10000}"
seconds="${2:-3}"

cargo build --release -q -p tilgang-core --example policy_rate
rate=target/release/examples/policy_rate

# One core: pinned with taskset when it is there.
pin=()
if command -v taskset >/dev/null; then pin=(taskset -c 0); fi
{ read -r per_second; read -r released; } < <("${pin[@]}" "$rate" "$persons" "$seconds")
line="| $persons × 20 | $(printf "%'d" "$per_second" 2>/dev/null || echo "$per_second") decisions/s | $released released per batch |"
echo "$line"

if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### policy, $(date -u +%Y-%m-%d), 1 of $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    echo "| batch | rate | check |"
    echo "|---|---|---|"
    echo "$line"
  } >> bench/RESULTS.md
  echo "recorded in bench/RESULTS.md"
fi
