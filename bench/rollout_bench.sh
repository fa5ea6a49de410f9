#!/usr/bin/env bash
# rollout_bench: how long a slice takes to be running on real nodes after a user
# adds them (`plcctl slice nodes add`), end to end: plcctl -> plcd -> PostgreSQL
# -> the change bus -> every node's WatchSlivers stream -> each node's sliverd
# reconciles -> the sliver is built and started (docs/benchmarks.md,
# "rollout_bench"). PlanetLab's nodes polled PLC every 10 minutes: a new slice took
# 10 to 15 minutes to appear everywhere.
#
# On the local planet (deploy/local-planet.sh: nodes as network namespaces, each
# with its own sliverd), a slice is added to all N nodes, timed until the last
# node's sliverd logged the sliver started, and removed again; ROUNDS times.
# Beside it, in the same run, the same slice added to one node: the peer, so the
# ratio says what fanning out to N nodes costs over reaching one. Times come from
# sliverd's own log lines (millisecond timestamps; the same clock), so nothing
# polls the nodes while they work.
#
# Usage: bench/rollout_bench.sh [--nodes N] [--rounds R] [--build-dir DIR]
#                               [--state-dir DIR] [--port N] [--reuse]
#   --nodes      nodes of the planet (default 8)
#   --rounds     rounds of each kind (default 20)
#   --build-dir  build directory (default: build)
#   --state-dir  the planet's directory (default: <build dir>/rollout-planet)
#   --port       plcd's port (default 28620)
#   --reuse      the planet at --state-dir is already up (local-planet.sh --keep);
#                without it the bench brings one up and stops it at the end
# Root (the nodes are namespaces and cgroups). Prints each round and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=8 rounds=20 build=build planet= port=28620 reuse=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --state-dir) planet=$2; shift ;;
    --port) port=$2; shift ;;
    --reuse) reuse=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "rollout_bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "rollout_bench: --nodes must be 1..99" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "rollout_bench: --rounds must be a positive number" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "rollout_bench: run as root (the nodes are namespaces)" >&2; exit 2; }
build=$(cd "$build" && pwd)
planet=${planet:-$build/rollout-planet}
plcctl_bin=$build/cli/plcctl
slice=princeton_rollout

stop_planet() { deploy/local-planet.sh stop --build-dir "$build" --state-dir "$planet" >/dev/null 2>&1 || true; }
if [ "$reuse" = 0 ]; then
  echo "rollout_bench: bringing up a planet of $nodes nodes (deploy/local-planet.sh; a few minutes)..." >&2
  if ! deploy/local-planet.sh --nodes "$nodes" --keep --no-build --build-dir "$build" \
      --state-dir "$planet" --port "$port" >"$build/rollout-planet.log" 2>&1; then
    tail -30 "$build/rollout-planet.log" >&2
    stop_planet
    echo "rollout_bench: the planet did not come up (log: $build/rollout-planet.log)" >&2
    exit 1
  fi
  trap stop_planet EXIT
fi

as() {
  local who=$1; shift
  PLCCTL_CONFIG="$planet/home/$who.conf" "$plcctl_bin" --plc "127.0.0.1:$port" "$@"
}
hosts=()
for k in $(seq "$nodes"); do hosts+=("node$k.princeton.planet.test"); done
log_of() { echo "$planet/node$1/sliverd.log"; }  # local-planet.sh's node_dir
[ -f "$(log_of 1)" ] || { echo "rollout_bench: no sliverd log for node1 under $planet" >&2; exit 1; }

# A slice of its own, on no node between rounds.
if ! as alice slice show "$slice" >/dev/null 2>&1; then
  as alice slice add "$slice" --description "rollout_bench" --url https://planet.test/rollout >/dev/null
  as alice slice members add "$slice" bob@princeton.edu >/dev/null
  as bob slice tag set "$slice" vref busybox >/dev/null
fi

# "[2026-12-03 21:20:01.123] [info] sliver X: start (...)" -> seconds since the epoch.
log_seconds() { date -u -d "$(sed -E 's/^\[([^]]*)\].*/\1/' <<<"$1")" +%s.%N; }
# Waits until node k's log, past byte `from`, says the slice's sliver did `what`;
# prints the seconds of that line.
wait_logged() {
  local k=$1 from=$2 what=$3 line
  for _ in $(seq 600); do
    line=$(tail -c +"$((from + 1))" "$(log_of "$k")" | grep -m1 "sliver $slice: $what " || true)
    [ -n "$line" ] && { log_seconds "$line"; return 0; }
    sleep 0.05
  done
  echo "rollout_bench: node$k did not $what $slice within 30 s; its log ends:" >&2
  tail -10 "$(log_of "$k")" >&2
  return 1
}

# One round: add the slice to the given node numbers, wait until each started it,
# remove it, wait until each destroyed it. Prints the seconds to the last start.
round() {
  local -a ks=("$@") offsets=() names=()
  local k t0 last=0 t
  for k in "${ks[@]}"; do offsets[$k]=$(stat -c %s "$(log_of "$k")"); names+=("${hosts[$((k - 1))]}"); done
  t0=$(date -u +%s.%N)
  as bob slice nodes add "$slice" "${names[@]}" >/dev/null
  for k in "${ks[@]}"; do
    t=$(wait_logged "$k" "${offsets[$k]}" start)
    last=$(awk -v a="$last" -v b="$t" -v z="$t0" 'BEGIN { d = b - z; print (d > a ? d : a) }')
  done
  for k in "${ks[@]}"; do offsets[$k]=$(stat -c %s "$(log_of "$k")"); done
  as bob slice nodes remove "$slice" "${names[@]}" >/dev/null
  for k in "${ks[@]}"; do wait_logged "$k" "${offsets[$k]}" destroy >/dev/null; done
  echo "$last"
}

all=(); one=()
for r in $(seq "$rounds"); do
  a=$(round $(seq "$nodes"))
  o=$(round 1)
  all+=("$a"); one+=("$o")
  printf 'round %2d: %d nodes %6.0f ms   1 node %6.0f ms\n' "$r" "$nodes" \
    "$(awk -v s="$a" 'BEGIN { print s * 1000 }')" "$(awk -v s="$o" 'BEGIN { print s * 1000 }')"
done

# median, p90 and max of a list of seconds, in ms.
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  p = v[int(NR * 0.9 + 0.999)]; printf "%.0f %.0f %.0f", m * 1000, p * 1000, v[NR] * 1000 }'; }
read -r am ap ax <<<"$(stats "${all[@]}")"
read -r om op ox <<<"$(stats "${one[@]}")"
echo
echo "rollout_bench: $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), $rounds rounds"
printf '  slice nodes add -> running on all %d nodes: median %5d ms  p90 %5d ms  max %5d ms\n' "$nodes" "$am" "$ap" "$ax"
printf '  slice nodes add -> running on 1 node (peer): median %5d ms  p90 %5d ms  max %5d ms\n' "$om" "$op" "$ox"
printf '  ratio (%d nodes / 1 node, medians): %.2fx   target: median <= 2000 ms for 8 nodes: %s\n' \
  "$nodes" "$(awk -v a="$am" -v o="$om" 'BEGIN { print a / o }')" \
  "$([ "$am" -le 2000 ] && echo met || echo NOT met)"
