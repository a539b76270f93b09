#!/usr/bin/env bash
# Audit log benchmark: sustained append rate of data-access-shaped events in
# batches (one transaction per batch, as a request writes them), and the
# rate at which `audit verify` walks the chain, on a fresh SQLite and a fresh
# PostgreSQL database. Prints the figures and appends them to
# bench/RESULTS.md (BENCH_RECORD=0 to only print).
#
#   bash bench/audit.sh [EVENTS] [BATCH]     # defaults: 1,000,000 events, 1,000 a batch
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-1000000}"
batch="${2:-1000}"
pg_admin="${TILGANG_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

cargo build --release -q -p tilgang-testkit --example audit_rate
rate=target/release/examples/audit_rate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

results=()
run() {
  local dialect="$1" url="$2" append verify
  read -r append verify < <($rate "$url" "$events" "$batch")
  local line="| $dialect | $events | $batch | $append events/s | $verify events/s |"
  echo "$line"
  results+=("$line")
}

run sqlite "sqlite://$work/audit.db"
if psql "$pg_admin" -c 'select 1' >/dev/null 2>&1; then
  psql "$pg_admin" -q -c 'DROP DATABASE IF EXISTS tilgang_audit_bench WITH (FORCE)' -c 'CREATE DATABASE tilgang_audit_bench' >/dev/null 2>&1
  run postgres "${pg_admin%/*}/tilgang_audit_bench"
  psql "$pg_admin" -q -c 'DROP DATABASE IF EXISTS tilgang_audit_bench WITH (FORCE)' >/dev/null
else
  echo "PostgreSQL not reachable at $pg_admin: skipped"
fi

if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### audit, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    echo "| database | events | batch | append | verify |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${results[@]}"
  } >> bench/RESULTS.md
  echo "recorded in bench/RESULTS.md"
fi
