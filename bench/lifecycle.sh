#!/usr/bin/env bash
# Lifecycle benchmark: import the national roster, age part of it (accounts
# unused for 13 months, persons inactive for 4 and 6 years), then run every
# lifecycle job, dry run first, and time each. Prints one line per job and
# appends the table to bench/RESULTS.md (BENCH_RECORD=0 to only print). The
# issue asks for all jobs within 60 s.
#
#   bash bench/lifecycle.sh                      # national scale (~1,300 institutions)
#   bash bench/lifecycle.sh --institutions 10    # a quick run
#   SKIP_POSTGRES=1 bash bench/lifecycle.sh      # SQLite only
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
roster_args lifecycle.sh "$@"
gen_roster "$data"

# Ages the database: every 5th person an account last used 400 days ago
# (every 50th of those only external: 100 days ago), every 40th person
# inactive for 4 years (archived), every 97th for 6 years (erased).
age_sql() {
  local now="$1" date4="$2" date6="$3"
  cat <<SQL
INSERT INTO accounts (person_id, password_hash, password_set_at, created_at, updated_at)
  SELECT id, 'x', $now - 400 * 86400, $now - 400 * 86400, $now - 400 * 86400 FROM persons WHERE id % 5 = 0
  ON CONFLICT (person_id) DO NOTHING;
UPDATE persons SET inactive_since = '$date4' WHERE id % 40 = 1;
UPDATE persons SET inactive_since = '$date6' WHERE id % 97 = 2;
SQL
}

results=()
run_set() {
  local dialect="$1" url="$2" exec_sql="$3"
  export TILGANG_DATABASE_URL="$url" TILGANG_MASTER_KEY_PATH="$work/bench.key"
  unset TILGANG_TEST_POSTGRES_URL
  local t0 t1
  t0=$(date +%s.%N)
  $bin import "$data" --json >/dev/null
  t1=$(date +%s.%N)
  echo "$dialect: imported in $(python3 -c "print(f'{$t1-$t0:.1f}')") s"
  local now date4 date6
  now=$(date +%s)
  date4=$(date -u -d '4 years ago' +%F)
  date6=$(date -u -d '6 years ago' +%F)
  age_sql "$now" "$date4" "$date6" | eval "$exec_sql"
  local total=0
  for job in close-unused archive-inactive erase-expired purge-import-files; do
    local d0 d1 r0 r1 found changed
    d0=$(date +%s.%N)
    found=$($bin jobs run "$job" --dry-run --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["affected"]))')
    d1=$(date +%s.%N)
    r0=$(date +%s.%N)
    changed=$($bin jobs run "$job" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["changed"])')
    r1=$(date +%s.%N)
    local dry run
    dry=$(python3 -c "print(f'{$d1-$d0:.2f}')")
    run=$(python3 -c "print(f'{$r1-$r0:.2f}')")
    total=$(python3 -c "print(f'{$total+$run:.2f}')")
    local line="| $dialect | $job | $found | $changed | $dry s | $run s |"
    echo "$line"
    results+=("$line")
  done
  local line="| $dialect | all four jobs | | | | $total s |"
  echo "$line"
  results+=("$line")
}

rm -f "$work/lifecycle.db" "$work/lifecycle.db-wal" "$work/lifecycle.db-shm" "$work/bench.key"
run_set sqlite "sqlite://$work/lifecycle.db" "python3 -c 'import sqlite3,sys; c=sqlite3.connect(\"$work/lifecycle.db\"); c.executescript(sys.stdin.read()); c.commit()'"
rm -f "$work/lifecycle.db" "$work/lifecycle.db-wal" "$work/lifecycle.db-shm"

if [ -z "${SKIP_POSTGRES:-}" ] && psql "$pg_admin" -c 'select 1' >/dev/null 2>&1; then
  psql "$pg_admin" -q -c 'DROP DATABASE IF EXISTS tilgang_lifecycle WITH (FORCE)' -c 'CREATE DATABASE tilgang_lifecycle' >/dev/null
  pg_url="${pg_admin%/*}/tilgang_lifecycle"
  run_set postgres "$pg_url" "psql $pg_url -q -v ON_ERROR_STOP=1"
  psql "$pg_admin" -q -c 'DROP DATABASE IF EXISTS tilgang_lifecycle WITH (FORCE)' >/dev/null
else
  echo "PostgreSQL skipped"
fi

if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### lifecycle, $label — $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
    echo
    echo "Aged before the run: every 5th person an account unused for 400 days, every 40th inactive 4 years, every 97th 6 years. Release build."
    echo
    echo "| database | job | found | changed | dry run | run |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${results[@]}"
  } >> bench/RESULTS.md
  echo "recorded in bench/RESULTS.md"
fi
