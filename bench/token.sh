#!/usr/bin/env bash
# Token endpoint benchmark. In one run:
#  - client-credentials tokens/s over HTTP with wrk, against tilgang and,
#    side by side, against panva's oidc-provider (the certified Node.js
#    provider, installed from npm into a temporary folder, client
#    credentials enabled, its default in-memory store);
#  - refresh grants/s (rotation) and full code flows/s (authorize with a
#    logged-in session + token request; the login itself is excluded),
#    each on their own, with bench's token_load program.
# Prints rate, p50 and p99 latency for each, the ratio against
# oidc-provider (the bar is 5x), and appends a dated row to
# bench/RESULTS.md (BENCH_RECORD=0 to only print). Release build, SQLite.
#
#   bash bench/token.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
conns="${2:-32}"

if ! command -v wrk >/dev/null; then
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed for oidc-provider" >&2; exit 1; }

cargo build --release -q -p tilgang
cargo build --release -q -p tilgang-testkit --example token_load
bin=$PWD/target/release/tilgang
load=$PWD/target/release/examples/token_load
work=$(mktemp -d)
trap 'for p in ${server:-} ${node_server:-}; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
export TILGANG_DATABASE_URL="sqlite://$work/token.db" TILGANG_MASTER_KEY_PATH="$work/token.key"
export TILGANG_LOGIN_PER_ADDRESS_LIMIT=1000000000 TILGANG_LOGIN_OVERALL_LIMIT=1000000000
unset TILGANG_TEST_POSTGRES_URL
password='rolig blæksprutte spiser kanelsnegle'
redirect=http://127.0.0.1/cb

# oidc-provider, installed now so its install does not overlap the runs.
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund oidc-provider >/dev/null)
op_version=$(node -p "require('$work/node_modules/oidc-provider/package.json').version")
op_secret=$(head -c 32 /dev/urandom | base64 | tr -d '=+/' | cut -c1-43)
cat > "$work/op.mjs" <<'JS'
import Provider from 'oidc-provider';
const [port, secret] = process.argv.slice(2);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench', client_secret: secret, grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  cookies: { keys: ['bench-cookie-key'] },
});
provider.listen(Number(port));
JS

# tilgang: a school's roster, a few teachers with passwords, two services.
(cd "$work" && $bin gen --out roster --scale school >/dev/null && $bin import roster >/dev/null)
users=$(python3 - "$work/roster" <<'PY'
import json, os, sys
d = sys.argv[1]
doc = json.load(open(os.path.join(d, sorted(os.listdir(d))[0])))
print(" ".join([p["user_id"] for p in doc["persons"] if any(r["role"] == "Lærer" for r in p.get("roles", []))][:8]))
PY
)
for u in $users; do printf '%s\n' "$password" | $bin user set-password "$u" >/dev/null; done
cc_secret=$($bin service add --client-id bench-api --name "Bench API" --grant client-credentials | sed -n 's/^client_secret: //p')
code_secret=$($bin service add --client-id bench-app --name "Bench app" --redirect-uri "$redirect" \
  --grant authorization-code --grant refresh-token --package small | sed -n 's/^client_secret: //p')
read -r verifier challenge < <(python3 -c "
import base64, hashlib, secrets
v = secrets.token_urlsafe(32)
c = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b'=').decode()
print(v, c)")

port=$((20000 + RANDOM % 20000))
op_port=$((port + 1))
$bin serve --listen "127.0.0.1:$port" --log-format json 2>/dev/null >/dev/null &
server=$!
NODE_ENV=production node "$work/op.mjs" "$op_port" "$op_secret" >/dev/null 2>&1 &
node_server=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$op_port/.well-known/openid-configuration" >/dev/null && break; sleep 0.1; done

# wrk posting a client-credentials request; prints "rate p50_ms p99_ms".
cc_run() {
  local url="$1" id="$2" secret="$3" out
  cat > "$work/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
LUA
  # A short warm-up (JIT for node, first key load for tilgang), then the run.
  wrk -t1 -c"$conns" -d2s -s "$work/cc.lua" "$url" >/dev/null
  out=$(wrk -t1 -c"$conns" -d"${seconds}s" --latency -s "$work/cc.lua" "$url")
  if grep -q 'Non-2xx' <<<"$out"; then echo "refused requests against $url:" >&2; echo "$out" >&2; exit 1; fi
  python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
print(f"{rate:.0f} {p50:.2f} {p99:.2f}")
PY
}

read -r t_rate t_p50 t_p99 < <(cc_run "http://127.0.0.1:$port/oidc/token" bench-api "$cc_secret")
read -r o_rate o_p50 o_p99 < <(cc_run "http://127.0.0.1:$op_port/token" bench "$op_secret")
kill $node_server; wait $node_server 2>/dev/null || true
ratio=$(python3 -c "print(f'{$t_rate / $o_rate:.1f}')")
echo "client credentials, tilgang:       $t_rate/s  p50 $t_p50 ms  p99 $t_p99 ms"
echo "client credentials, oidc-provider: $o_rate/s  p50 $o_p50 ms  p99 $o_p99 ms  (v$op_version)"
echo "ratio: ${ratio}x (bar: 5x)"

clients=8
read -r r_rate r_p50 r_p99 _ < <($load refresh "http://127.0.0.1:$port" "$seconds" $clients bench-app "$code_secret" "$redirect" "$verifier" "$challenge" "$password" $users)
echo "refresh grants, tilgang: $r_rate/s  p50 $r_p50 ms  p99 $r_p99 ms"
read -r c_rate c_p50 c_p99 _ < <($load code "http://127.0.0.1:$port" "$seconds" $clients bench-app "$code_secret" "$redirect" "$verifier" "$challenge" "$password" $users)
echo "code flows (authorize + token), tilgang: $c_rate/s  p50 $c_p50 ms  p99 $c_p99 ms"
kill $server; wait $server 2>/dev/null || true

if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### token, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    echo "SQLite; wrk (1 thread, $conns connections) for client credentials, token_load ($clients workers) for refresh and code flows, all on the same cores as the server; oidc-provider $op_version on node $(node --version) (one process, in-memory store)."
    echo
    echo "| measure | server | rate | p50 | p99 |"
    echo "|---|---|---|---|---|"
    echo "| client credentials | tilgang | $t_rate/s | $t_p50 ms | $t_p99 ms |"
    echo "| client credentials | oidc-provider | $o_rate/s | $o_p50 ms | $o_p99 ms |"
    echo "| refresh grant | tilgang | $r_rate/s | $r_p50 ms | $r_p99 ms |"
    echo "| code flow (authorize + token) | tilgang | $c_rate/s | $c_p50 ms | $c_p99 ms |"
    echo
    echo "Client credentials: tilgang ${ratio}x oidc-provider (bar 5x)."
  } >> bench/RESULTS.md
  echo "recorded in bench/RESULTS.md"
fi
