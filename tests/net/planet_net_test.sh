#!/usr/bin/env bash
# deploy/planet-net.sh end to end: brings a two-node planet network up, checks
# from node1's namespace what the planet's users rely on — ping and ping -6 to
# the other node and the remote site, traceroute showing the router hop, TCP and
# UDP echo over IPv4 and IPv6, a short iperf3 run — and that nothing reaches
# past the planet (the host's own address); then takes it down and checks that
# nothing is left: namespaces, the host link, server processes, the run dir.
# Exits 77 (skipped) without root or a needed tool.
set -euo pipefail
net=${1:?usage: planet_net_test.sh path/to/deploy/planet-net.sh}
prefix=plngt$$
prefix=${prefix:0:12}

skip() { echo "SKIP: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for tool in ip nsenter ping traceroute iperf3 python3 ss; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (deploy/install-deps.sh)"
done

fail() { echo "FAILED: $*" >&2; exit 1; }
cleanup() { bash "$net" down --prefix "$prefix" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Only one planet at a time may have a host link (it takes the nodes' subnet in
# this namespace): with a local planet running, the host-link checks are left out.
host_link=--host-link
if ip route show | grep -q '^10\.207\.0\.0/24 '; then
  echo "NOTE: 10.207.0.0/24 is routed here already (a local planet?); testing without the host link"
  host_link=
fi
bash "$net" up --prefix "$prefix" --nodes 2 $host_link
topology=/run/plng-net/$prefix/topology
[ -f "$topology" ] || fail "no $topology"
# shellcheck disable=SC1090
. "$topology"
in_node1() { nsenter --net="$netns_node1" -- "$@"; }

echo "== ping and ping -6: the other node, the remote site"
for target in "$node2_ipv4" "$node2_ipv6" "$remote_ipv4" "$remote_ipv6"; do
  in_node1 ping -c 1 -W 2 "$target" >/dev/null || fail "node1 cannot ping $target"
  echo "node1 -> $target: ping ok"
done

echo "== traceroute shows the router between node1 and the remote site"
for family in 4 6; do
  router=router_ipv$family remote=remote_ipv$family
  in_node1 traceroute -"$family" -n -q 1 -w 2 -m 5 "${!remote}" | tee "/run/plng-net/$prefix/trace"
  awk '$1 == 1 {print $2}' "/run/plng-net/$prefix/trace" | grep -qx "${!router}" ||
    fail "IPv$family hop 1 is not the router ${!router}"
  awk '$1 == 2 {print $2}' "/run/plng-net/$prefix/trace" | grep -qx "${!remote}" ||
    fail "IPv$family hop 2 is not the remote site ${!remote}"
done

echo "== TCP and UDP echo at the remote site, IPv4 and IPv6"
for target in "$remote_ipv4" "$remote_ipv6"; do
  reply=$(in_node1 timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2"; echo "tcp to $1" >&3; read -r line <&3; echo "$line"' _ "$target" "$remote_echo_port")
  [ "$reply" = "tcp to $target" ] || fail "TCP echo at $target answered '$reply'"
  # One datagram each way: dd reads exactly one.
  reply=$(in_node1 timeout 5 bash -c '
    exec 3<>"/dev/udp/$1/$2"; printf "udp to %s" "$1" >&3; dd bs=2048 count=1 status=none <&3' _ "$target" "$remote_echo_port")
  [ "$reply" = "udp to $target" ] || fail "UDP echo at $target answered '$reply'"
  echo "echo at $target: TCP and UDP ok"
done

echo "== iperf3 to the remote site (1 s)"
in_node1 timeout 20 iperf3 --client "$remote_ipv4" --port "$remote_iperf3_port" --time 1 \
  --json >"/run/plng-net/$prefix/iperf3.json" || fail "iperf3 failed"
bps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]))' \
  "/run/plng-net/$prefix/iperf3.json")
[ "$bps" -gt 0 ] || fail "iperf3 moved nothing"
echo "iperf3: $((bps / 1000000)) Mbit/s"

echo "== the host link reaches the nodes; nothing routes past the planet"
if [ -n "$host_link" ]; then
  ping -c 1 -W 2 "$node1_ipv4" >/dev/null || fail "the host cannot reach node1 over its link"
  ping -6 -c 1 -W 2 "$node1_ipv6" >/dev/null || fail "the host cannot reach node1 over IPv6"
fi
# The host's own (non-planet) address: no route there from a node.
host_addr=$(ip -4 -o addr show scope global | awk '$4 !~ /^10\.207\./ {sub("/.*", "", $4); print $4; exit}')
if [ -n "$host_addr" ]; then
  if in_node1 ping -c 1 -W 1 "$host_addr" >/dev/null 2>&1; then
    fail "node1 reached $host_addr, outside the planet"
  fi
  echo "node1 -> $host_addr (the host's own address): unreachable, as it should be"
fi

echo "== down leaves nothing behind"
pids=$(for ns in inet remote node1 node2; do ip netns pids "$prefix-$ns"; done)
[ -n "$pids" ] || fail "no server processes were found before down"
bash "$net" down --prefix "$prefix"
left=$(ip netns list | grep -c "^$prefix-" || true)
[ "$left" = 0 ] || fail "namespaces left: $(ip netns list | grep "^$prefix-")"
if ip link show "$prefix-h" >/dev/null 2>&1; then fail "the host link $prefix-h is left"; fi
# A process that has exited may stay a zombie until its parent reaps it: not left.
for pid in $pids; do
  case "$(ps -o stat= -p "$pid" 2>/dev/null)" in ''|Z*) ;; *) fail "process $pid is left" ;; esac
done
if [ -e "/run/plng-net/$prefix" ]; then fail "/run/plng-net/$prefix is left"; fi
bash "$net" down --prefix "$prefix" || fail "a second down failed"
if bash "$net" status --prefix "$prefix"; then fail "status says up after down"; fi
echo "planet network test passed"
