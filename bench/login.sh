#!/usr/bin/env bash
# Login benchmark: password logins per second end to end over HTTP (form
# fetch for the CSRF token, then the POST that verifies the password and
# opens a session), and bare Argon2id verifications per second with the same
# parameters on the same cores, in one run; prints the ratio and appends the
# figures to bench/RESULTS.md (BENCH_RECORD=0 to only print).
#
#   bash bench/login.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"

cargo build --release -q -p tilgang
cargo build --release -q -p tilgang-core --example argon2_rate
cargo build --release -q -p tilgang-testkit --example login_load
bin=$PWD/target/release/tilgang
work=$(mktemp -d)
trap '[ -n "${server:-}" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export TILGANG_DATABASE_URL="sqlite://$work/login.db" TILGANG_MASTER_KEY_PATH="$work/login.key"
# All clients share one address here; lift the per-address limit for the run.
export TILGANG_LOGIN_PER_ADDRESS_LIMIT=1000000000 TILGANG_LOGIN_OVERALL_LIMIT=1000000000
unset TILGANG_TEST_POSTGRES_URL
password='rolig blæksprutte spiser kanelsnegle'

(cd "$work" && $bin gen --out roster --scale school >/dev/null && $bin import roster >/dev/null)
users=$(python3 - "$work/roster" <<'PY'
import json, os, sys
d = sys.argv[1]
doc = json.load(open(os.path.join(d, sorted(os.listdir(d))[0])))
print(" ".join(p["user_id"] for p in doc["persons"] if any(r["role"] == "Lærer" for r in p.get("roles", [])))[:20 * 9])
PY
)
users=$(echo $users | tr ' ' '\n' | head -20 | tr '\n' ' ')
for u in $users; do printf '%s\n' "$password" | $bin user set-password "$u" >/dev/null; done

port=$((20000 + RANDOM % 20000))
$bin serve --listen "127.0.0.1:$port" --log-format json 2>/dev/null &
server=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

# CPU time (user + system, in clock ticks of 10 ms) of the server process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
before=$(cpu_ticks $server)
read -r logins count < <(target/release/examples/login_load "http://127.0.0.1:$port" "$seconds" 8 "$password" $users)
after=$(cpu_ticks $server)
kill $server; wait $server 2>/dev/null || true
read -r bare bare_ms < <(target/release/examples/argon2_rate "$seconds")
read -r ratio login_ms cpu_share < <(python3 -c "
login_ms = 10 * ($after - $before) / $count
print(f'{100 * $logins / $bare:.1f} {login_ms:.2f} {100 * $bare_ms / login_ms:.1f}')")
echo "logins over HTTP: $logins/s"
echo "bare Argon2id verifications: $bare/s"
echo "ratio: $ratio %"
# Less noisy than the rates when something else runs on the machine: the
# server's CPU per login against the CPU of one bare verification.
echo "server CPU per login: $login_ms ms; per bare verification: $bare_ms ms; Argon2id share: $cpu_share %"
if [ "${BENCH_RECORD:-1}" = 1 ]; then
  {
    echo
    echo "### login, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    echo "Argon2id m=19 MiB, t=2, p=1; 8 concurrent HTTP clients (Rust, one thread) on the same 2 cores; SQLite."
    echo
    echo "| logins over HTTP | bare Argon2id verifications | ratio | server CPU per login | CPU per bare verification |"
    echo "|---|---|---|---|---|"
    echo "| $logins/s | $bare/s | $ratio % | $login_ms ms | $bare_ms ms |"
  } >> bench/RESULTS.md
fi
