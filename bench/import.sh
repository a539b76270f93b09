#!/usr/bin/env bash
# Import benchmark: generate a roster once, import it into a fresh SQLite and
# a fresh PostgreSQL database, then re-import it unchanged and with 1% of the
# persons changed. Prints wall time, records/s and peak RSS for each run and
# appends them to bench/RESULTS.md (BENCH_RECORD=0 to only print).
#
#   bash bench/import.sh                       # national scale (~1,300 institutions)
#   bash bench/import.sh --institutions 10     # a quick run, as CI does
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
roster_args import.sh "$@"
changed="$work/roster-$label-changed"
gen_roster "$data"
gen_roster "$changed" --changed-percent 1

# Runs an import; prints "wall_s records rss_mib changed_rows".
measure() {
  local url="$1" dir="$2"
  python3 - "$bin" "$url" "$dir" <<'PY'
import json, resource, subprocess, sys, time, os
binary, url, path = sys.argv[1:4]
env = dict(os.environ, TILGANG_DATABASE_URL=url, TILGANG_MASTER_KEY_PATH="bench/data/bench.key")
env.pop("TILGANG_TEST_POSTGRES_URL", None)
t = time.monotonic()
out = subprocess.run([binary, "import", path, "--json"], env=env, capture_output=True, text=True)
wall = time.monotonic() - t
if out.returncode != 0:
    sys.stderr.write(out.stdout + out.stderr)
    sys.exit(1)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
s = json.loads(out.stdout)["summary"]
kinds = ["institutions", "persons", "roles", "groups", "memberships", "contacts"]
records = sum(s[k][f] for k in kinds for f in ("created", "updated", "ended", "unchanged"))
written = sum(s[k][f] for k in kinds for f in ("created", "updated", "ended"))
print(f"{wall:.2f} {records} {rss:.0f} {written}")
PY
}

results=()
run_set() {
  local dialect="$1" url="$2"
  for step in "initial:$data" "unchanged:$data" "1%-changed:$changed"; do
    local name="${step%%:*}" dir="${step#*:}"
    read -r wall records rss written < <(measure "$url" "$dir")
    local rate
    rate=$(python3 -c "print(f'{$records/$wall:,.0f}')")
    local line="| $dialect | $name | $wall s | $rate records/s | $written rows written | $rss MiB |"
    echo "$line"
    results+=("$line")
  done
}

rm -f "$work/bench.db" "$work/bench.db-wal" "$work/bench.db-shm" "$work/bench.key"
run_set sqlite "sqlite://$work/bench.db"

if psql "$pg_admin" -c 'select 1' >/dev/null 2>&1; then
  psql "$pg_admin" -q -c 'DROP DATABASE IF EXISTS tilgang_bench WITH (FORCE)' -c 'CREATE DATABASE tilgang_bench' >/dev/null
  pg_url="${pg_admin%/*}/tilgang_bench"
  run_set postgres "$pg_url"
  psql "$pg_admin" -q -c 'DROP DATABASE IF EXISTS tilgang_bench WITH (FORCE)' >/dev/null
else
  echo "PostgreSQL not reachable at $pg_admin: skipped"
fi

if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### import, $label — $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
    echo
    echo "| database | run | wall | throughput | written | peak RSS |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${results[@]}"
  } >> bench/RESULTS.md
  echo "recorded in bench/RESULTS.md"
fi
