#!/usr/bin/env bash
# Export benchmark (issue 6): import the national roster into SQLite, grant
# a benchmark service the small package for export at every institution,
# then export one institution of ~1,000 pupils and every institution (one
# export at a time, then two at a time) through `sharing::export`, audit
# included, the bytes dropped as they come. Prints
# persons/s and MB/s (crates/store/examples/export_load.rs). The issue's
# bar: the national small-package export at 200,000 persons/s on 2 cores.
#
#   bash bench/export.sh                        # national scale, small package, JSON
#   bash bench/export.sh --institutions 10      # a quick run
#   PACKAGE=large FORMAT=oneroster bash bench/export.sh
set -euo pipefail
cd "$(dirname "$0")/.."

n=1300
case "${1:-}" in --institutions) n="$2" ;; "") ;; *) echo "usage: bench/export.sh [--institutions N]" >&2; exit 2 ;; esac
label="national${1:+-$n}"
# The example lives in the store crate: a release build without the web
# crate. It generates and imports the roster (seed 1) on its first run.
cargo build --release -q -p tilgang-store --example export_load
mkdir -p bench/data
db="bench/data/export-$label.db"
out=$(target/release/examples/export_load "$db" bench/data/bench.key "$n" "${PACKAGE:-small}" "${FORMAT:-json}" "${PAGE:-2000}")
echo "$out"

if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### export, $label, ${PACKAGE:-small} package, ${FORMAT:-json} — $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo '```'
    echo "$out"
    echo '```'
  } >> bench/RESULTS.md
  echo "recorded in bench/RESULTS.md"
fi
