#!/usr/bin/env bash
# Data API benchmark (issue 6). In one run:
#  - lookups/s: wrk on GET /api/v1/users/{id} with a client-credentials
#    token, a lua script rotating over every person of a municipality-size
#    roster (the demo's scale), the service approved for the medium
#    package at every institution;
#  - the same with the data API's audit switched off by the benchmark-only
#    TILGANG_BENCH_DISABLE_API_AUDIT=1, to show what the audit costs.
# Prints rate, p50, p99 and the CPU share idle and stolen by the host for
# each, and the audit's share of the cost
# (bars: 20,000 lookups/s; audit at most +10%), and appends a dated row to
# bench/RESULTS.md (BENCH_RECORD=0 to only print). Release build, SQLite
# (TILGANG_BENCH_DATABASE_URL=postgres://… for PostgreSQL).
#
#   bash bench/api.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
conns="${2:-32}"

if ! command -v wrk >/dev/null; then
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

cargo build --release -q -p tilgang
bin=$PWD/target/release/tilgang
work=$(mktemp -d)
trap '[ -n "${server:-}" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export TILGANG_DATABASE_URL="${TILGANG_BENCH_DATABASE_URL:-sqlite://$work/api.db}" TILGANG_MASTER_KEY_PATH="$work/api.key"
# The limit per service would stop the load generator: set far out of reach.
export TILGANG_API_RATE_PER_SECOND=1000000000 TILGANG_API_RATE_BURST=1000000000
unset TILGANG_TEST_POSTGRES_URL TILGANG_BENCH_DISABLE_API_AUDIT

# A municipality (the demo's scale), one service approved for medium at
# every institution of it.
(cd "$work" && $bin gen --out roster --scale municipality --seed 1 >/dev/null && $bin import roster >/dev/null)
python3 - "$work/roster" > "$work/users.txt" <<'PY'
import json, os, sys
d = sys.argv[1]
users = []
for f in sorted(os.listdir(d)):
    if f.endswith(".json"):
        doc = json.load(open(os.path.join(d, f)))
        users += [p["user_id"] for p in doc["persons"] if p.get("roles")]
print("\n".join(users[:20000]))
PY
municipality=$(python3 -c "
import json, os, sys
d = '$work/roster'
f = sorted(x for x in os.listdir(d) if x.endswith('.json'))[0]
print(json.load(open(os.path.join(d, f)))['institution']['municipality_code'])")
secret=$($bin service add --client-id bench-api --name "Bench API" --grant client-credentials | sed -n 's/^client_secret: //p')
cat > "$work/spec.json" <<'JSON'
{"purpose": "Benchmark", "package": "medium", "delivery": "both", "locations": ["DK"],
 "retention": "none", "dpa_reference": "BENCH-1"}
JSON
$bin sharing request --service bench-api --spec "$work/spec.json" --municipality "$municipality" >/dev/null
$bin sharing approve --municipality "$municipality" --service bench-api >/dev/null

# Lua: rotate over the user ids; one token for the whole run.
lua_for() {
  cat > "$work/lookup.lua" <<LUA
local users = {}
for line in io.lines("$work/users.txt") do users[#users + 1] = line end
local i = 0
local token = "$1"
request = function()
  i = i % #users + 1
  return wrk.format("GET", "/api/v1/users/" .. users[i], {["Authorization"] = "Bearer " .. token})
end
LUA
}

# Starts the server (extra environment in "$@"), fetches a token, runs
# wrk; prints "rate p50_ms p99_ms idle% steal%".
run() {
  local port=$((20000 + RANDOM % 20000)) out token
  env "$@" $bin serve --listen "127.0.0.1:$port" --log-format json 2>/dev/null >/dev/null &
  server=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  token=$(curl -fs -u "bench-api:$secret" -d grant_type=client_credentials "http://127.0.0.1:$port/oidc/token" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  lua_for "$token"
  wrk -t1 -c"$conns" -d2s -s "$work/lookup.lua" "http://127.0.0.1:$port" >/dev/null
  local before after
  before=$(head -1 /proc/stat)
  out=$(wrk -t1 -c"$conns" -d"${seconds}s" --latency -s "$work/lookup.lua" "http://127.0.0.1:$port")
  after=$(head -1 /proc/stat)
  kill $server; wait $server 2>/dev/null || true
  if grep -q 'Non-2xx' <<<"$out"; then echo "refused requests:" >&2; echo "$out" >&2; exit 1; fi
  python3 - "$out" "$before" "$after" <<'PY'
import re, sys
out = sys.argv[1]
# The CPU's share idle and stolen by the hypervisor during the run: on a
# shared VM the steal says how far the rate is the host's, not ours.
b, a = ([int(x) for x in s.split()[1:9]] for s in sys.argv[2:4])
d = [y - x for x, y in zip(b, a)]
idle, steal = d[3] * 100 / sum(d), d[7] * 100 / sum(d)
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
print(f"{rate:.0f} {p50:.2f} {p99:.2f} {idle:.0f} {steal:.0f}")
PY
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
# On and off alternate, twice, and the faster run of each counts: on a
# shared VM the host's load drifts within a minute.
best() { sort -n -r | head -1; }
on=() off=()
for _ in 1 2; do
  on+=("$(run TILGANG_LOG_LEVEL=warn)")
  off+=("$(run TILGANG_LOG_LEVEL=warn TILGANG_BENCH_DISABLE_API_AUDIT=1)")
done
read -r a_rate a_p50 a_p99 a_idle a_steal < <(printf '%s\n' "${on[@]}" | best)
read -r n_rate n_p50 n_p99 n_idle n_steal < <(printf '%s\n' "${off[@]}" | best)
cost=$(python3 -c "print(f'{($n_rate / $a_rate - 1) * 100:.1f}')")
persons=$(wc -l < "$work/users.txt")
echo "lookup, audit on:  $a_rate/s  p50 $a_p50 ms  p99 $a_p99 ms  idle $a_idle%  stolen $a_steal%  (bar 20000/s)"
echo "lookup, audit off: $n_rate/s  p50 $n_p50 ms  p99 $n_p99 ms  idle $n_idle%  stolen $n_steal%"
echo "audit adds: ${cost}% to the lookup cost (bar 10%)"

# The export's throughput is bench/export.sh.

if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### api, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    echo "$(echo "$TILGANG_DATABASE_URL" | cut -d: -f1); municipality roster, $persons user ids rotated; medium package approved; wrk (1 thread, $conns connections) on the same cores as the server; load average before: $load; on and off alternated twice, the faster run of each shown."
    echo
    echo "| measure | rate | p50 | p99 | CPU idle | CPU stolen |"
    echo "|---|---|---|---|---|---|"
    echo "| GET /api/v1/users/{id}, audit on | $a_rate/s | $a_p50 ms | $a_p99 ms | $a_idle% | $a_steal% |"
    echo "| GET /api/v1/users/{id}, audit off (bench only) | $n_rate/s | $n_p50 ms | $n_p99 ms | $n_idle% | $n_steal% |"
    echo
    echo "Audit adds ${cost}% (bar 10%); bar 20,000 lookups/s."
  } >> bench/RESULTS.md
  echo "recorded in bench/RESULTS.md"
fi
