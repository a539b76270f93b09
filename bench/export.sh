#!/usr/bin/env bash
# Export benchmark (issue 6): import the national roster into SQLite, grant
# a benchmark service the small package for export at every institution,
# then export one institution of ~1,000 pupils and every institution
# through `sharing::export`, audit included, into a byte counter. Prints
# persons/s and MB/s (crates/tilgang/examples/export_load.rs). The issue's
# bar: the national small-package export at 200,000 persons/s on 2 cores.
#
#   bash bench/export.sh                        # national scale, small package, JSON
#   bash bench/export.sh --institutions 10      # a quick run
#   PACKAGE=large FORMAT=oneroster bash bench/export.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
roster_args export.sh "$@"
gen_roster "$data"
cargo build --release -q -p tilgang --example export_load

db="$work/export-$label.db"
export TILGANG_DATABASE_URL="sqlite://$db" TILGANG_MASTER_KEY_PATH="$work/bench.key"
unset TILGANG_TEST_POSTGRES_URL
if [ ! -f "$db.done" ]; then
  rm -f "$db" "$db-wal" "$db-shm"
  t0=$(date +%s.%N)
  $bin import "$data" --json >/dev/null
  t1=$(date +%s.%N)
  echo "imported in $(python3 -c "print(f'{$t1-$t0:.1f}')") s"
  touch "$db.done"
fi

out=$(target/release/examples/export_load "sqlite://$db" "$work/bench.key" "${PACKAGE:-small}" "${FORMAT:-json}" "${PAGE:-2000}")
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
