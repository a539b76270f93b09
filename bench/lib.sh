# Shared by the roster benchmarks (import.sh, lifecycle.sh): the scale
# options, the release build and the generated roster, made once per
# scale under bench/data and reused.
#
#   source bench/lib.sh; roster_args NAME "$@"; gen_roster DIR [gen options]

roster_args() {
  local name="$1"
  shift
  institutions=""
  scale=national
  while [ $# -gt 0 ]; do
    case "$1" in
      --institutions) institutions="$2"; shift 2 ;;
      --scale) scale="$2"; shift 2 ;;
      *) echo "usage: bench/$name [--scale school|municipality|national] [--institutions N]" >&2; exit 2 ;;
    esac
  done
  label="$scale${institutions:+-$institutions}"
  pg_admin="${TILGANG_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

  cargo build --release -q -p tilgang
  bin=target/release/tilgang
  work=bench/data
  mkdir -p "$work"
  data="$work/roster-$label"
}

# Generates the roster into DIR (seed 1, plus any further `gen` options)
# unless a finished one is there.
gen_roster() {
  local dir="$1"
  shift
  if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    $bin gen --out "$dir" --scale "$scale" ${institutions:+--institutions "$institutions"} --seed 1 "$@"
    touch "$dir/.done"
  fi
}
