#!/usr/bin/env bash
# The network of a planet on one machine: network namespaces standing for the
# Internet, for each node, and for a remote site with servers on it. Used by the
# local planet (deploy/local-planet.sh) and by tests (tests/support/planet_net.h).
#
#   planet-net.sh up     --prefix P --nodes N [--host-link]
#   planet-net.sh down   --prefix P
#   planet-net.sh status --prefix P
#
#   P-inet     "the Internet": bridge inet0 joining the nodes, and the router to
#              the remote site (forwarding on; the one hop traceroute shows)
#   P-nodeK    node K (1..N): eth0 on inet0 with 10.207.0.(10+K)/24 and
#              fdc5:1a9e:7b00::(10+K)/64; default routes via the router
#   P-remote   the remote site, behind the router: eth0 with 10.207.1.2/24 and
#              fdc5:1a9e:7b00:1::2/64; runs a TCP and UDP echo server on port 7
#              (deploy/planet-echo.py) and an iperf3 server on 5201; answers ping
#   --host-link  also a veth from this (host) namespace, P-h, onto inet0 with
#              10.207.0.254/24 and fdc5:1a9e:7b00::fe/64, so host processes reach
#              the nodes and the nodes reach host services bound to that address
#              (the local planet's plcd); the host's routes gain only those two
#              connected subnets, and the host does not forward between them.
#
# The addresses live only inside these namespaces (and on P-h), so planets with
# other prefixes coexist; only --host-link takes the subnets in the host's own
# namespace, and refuses when something there already routes them. Nothing is
# routed off the machine: the router knows only the planet's subnets.
#
# `up` writes the address plan to /run/plng-net/P/topology (key=value lines,
# shell-sourceable: node1_ipv4=..., remote_ipv6=..., router_ipv4=...,
# host_ipv4=..., netns_node1=/run/netns/P-node1, ...). `down` is idempotent:
# it stops every process still in the planet's namespaces (the servers, and
# anything else a caller left in them), removes the namespaces (their veths and
# bridge go with them), P-h and /run/plng-net/P. Run a command in a namespace with
# `nsenter --net=/run/netns/P-nodeK cmd`, not `ip netns exec` (which remounts
# /sys and hides /sys/fs/cgroup and /sys/fs/bpf). Needs root.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

action=${1:-}
[ -n "$action" ] || usage
shift
prefix= nodes=0 host_link=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --host-link) host_link=1; shift ;;
    -h|--help) usage ;;
    *) echo "planet-net.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
# P-h must fit in an interface name (15 characters).
[[ "$prefix" =~ ^[a-z][a-z0-9-]{0,11}$ ]] ||
  { echo "planet-net.sh: --prefix must be 1-12 of [a-z0-9-], starting with a letter" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "planet-net.sh: needs root (network namespaces)" >&2; exit 1; }

run_dir=/run/plng-net/$prefix
v4_nodes=10.207.0 v4_site=10.207.1
v6_nodes=fdc5:1a9e:7b00: v6_site=fdc5:1a9e:7b00:1:
host_link_name=$prefix-h

netns_of() { echo "$prefix-$1"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }
planet_namespaces() { ip netns list | awk '{print $1}' | grep -E "^$prefix-(inet|remote|node[0-9]+)$" || true; }

down() {
  local ns pid
  for ns in $(planet_namespaces); do
    # Processes still in the namespace: its servers, or what a caller left there.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  for ns in $(planet_namespaces); do
    for _ in $(seq 30); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.1; done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
  ip link delete "$host_link_name" 2>/dev/null || true
  rm -rf -- "$run_dir"
  rmdir /run/plng-net 2>/dev/null || true
}

status() {
  local ns
  if [ ! -f "$run_dir/topology" ] && [ -z "$(planet_namespaces)" ]; then
    echo "planet network $prefix: down"
    return 3
  fi
  echo "planet network $prefix:"
  [ -f "$run_dir/topology" ] && sed 's/^/  /' "$run_dir/topology"
  for ns in $(planet_namespaces); do
    echo "== $ns"
    in_ns "$ns" ip -br addr show | grep -v '^lo ' | sed 's/^/  /'
    echo "  processes: $(ip netns pids "$ns" | tr '\n' ' ')"
  done
  if ip link show "$host_link_name" >/dev/null 2>&1; then
    echo "== host link"; ip -br addr show "$host_link_name" | sed 's/^/  /'
  fi
}

# A namespace with loopback up, no IPv6 router advertisements or DAD delays.
make_ns() {
  local ns=$1
  ip netns add "$ns"
  in_ns "$ns" ip link set lo up
  in_ns "$ns" sysctl -qw net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0 \
    net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
}

# A host's eth0: its IPv4 (/24) and IPv6 (/64) address, default routes via the router.
configure_eth0() {
  local ns=$1 ipv4=$2 ipv6=$3 gateway4=$4 gateway6=$5
  in_ns "$ns" ip addr add "$ipv4/24" dev eth0
  in_ns "$ns" ip addr add "$ipv6/64" dev eth0 nodad
  in_ns "$ns" ip link set eth0 up
  in_ns "$ns" ip route add default via "$gateway4"
  in_ns "$ns" ip -6 route add default via "$gateway6"
}

up() {
  [[ "$nodes" =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] && [ "$nodes" -le 200 ] ||
    { echo "planet-net.sh: --nodes must be 1..200" >&2; exit 2; }
  if [ -n "$(planet_namespaces)" ] || [ -e "$run_dir" ]; then
    echo "planet-net.sh: planet network $prefix exists already ('planet-net.sh down --prefix $prefix' first)" >&2
    exit 1
  fi
  if [ "$host_link" = 1 ] && ip route show | grep -q "^$v4_nodes\.0/24 "; then
    echo "planet-net.sh: $v4_nodes.0/24 is routed in this namespace already (another planet's host link?): $(ip route show | grep "^$v4_nodes\.0/24 ")" >&2
    exit 1
  fi
  trap 'echo "planet-net.sh: up failed; removing what was made" >&2; down' ERR
  mkdir -p "$run_dir"
  local inet remote ns k
  inet=$(netns_of inet)
  remote=$(netns_of remote)
  make_ns "$inet"
  in_ns "$inet" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
  in_ns "$inet" ip link add inet0 type bridge forward_delay 0 stp_state 0
  in_ns "$inet" ip addr add "$v4_nodes.1/24" dev inet0
  in_ns "$inet" ip addr add "${v6_nodes}:1/64" dev inet0 nodad
  in_ns "$inet" ip link set inet0 up

  # The remote site, one routed hop away.
  make_ns "$remote"
  ip -n "$inet" link add site0 type veth peer name eth0 netns "$remote"
  in_ns "$inet" ip addr add "$v4_site.1/24" dev site0
  in_ns "$inet" ip addr add "${v6_site}:1/64" dev site0 nodad
  in_ns "$inet" ip link set site0 up
  configure_eth0 "$remote" "$v4_site.2" "${v6_site}:2" "$v4_site.1" "${v6_site}:1"

  {
    echo "prefix=$prefix"
    echo "nodes=$nodes"
    echo "netns_inet=/run/netns/$inet"
    echo "netns_remote=/run/netns/$remote"
    echo "router_ipv4=$v4_nodes.1"
    echo "router_ipv6=${v6_nodes}:1"
    echo "remote_ipv4=$v4_site.2"
    echo "remote_ipv6=${v6_site}:2"
    echo "remote_echo_port=7"
    echo "remote_iperf3_port=5201"
  } >"$run_dir/topology.new"

  for k in $(seq "$nodes"); do
    ns=$(netns_of "node$k")
    make_ns "$ns"
    ip -n "$inet" link add "port$k" type veth peer name eth0 netns "$ns"
    in_ns "$inet" ip link set "port$k" master inet0 up
    configure_eth0 "$ns" "$v4_nodes.$((10 + k))" "${v6_nodes}:$((10 + k))" "$v4_nodes.1" "${v6_nodes}:1"
    {
      echo "netns_node$k=/run/netns/$ns"
      echo "node${k}_ipv4=$v4_nodes.$((10 + k))"
      echo "node${k}_ipv6=${v6_nodes}:$((10 + k))"
    } >>"$run_dir/topology.new"
  done

  if [ "$host_link" = 1 ]; then
    ip link add "$host_link_name" type veth peer name host0 netns "$inet"
    in_ns "$inet" ip link set host0 master inet0 up
    ip addr add "$v4_nodes.254/24" dev "$host_link_name"
    ip addr add "${v6_nodes}:fe/64" dev "$host_link_name" nodad
    ip link set "$host_link_name" up
    {
      echo "host_ipv4=$v4_nodes.254"
      echo "host_ipv6=${v6_nodes}:fe"
    } >>"$run_dir/topology.new"
  fi

  # The remote site's servers; `down` stops them with the namespace's other processes.
  local echo_server
  echo_server="$(dirname "$(realpath "$0")")/planet-echo.py"
  in_ns "$remote" python3 "$echo_server" --port 7 >"$run_dir/echo.log" 2>&1 &
  echo $! >"$run_dir/echo.pid"
  in_ns "$remote" iperf3 --server --port 5201 --daemon --pidfile "$run_dir/iperf3.pid" \
    --logfile "$run_dir/iperf3.log"
  # Ready when both listen (the echo server binds before it prints "ready").
  for _ in $(seq 50); do
    if in_ns "$remote" ss -Hltn 'sport = :7' | grep -q . &&
      in_ns "$remote" ss -Hltn 'sport = :5201' | grep -q .; then
      break
    fi
    kill -0 "$(cat "$run_dir/echo.pid")" 2>/dev/null ||
      { cat "$run_dir/echo.log" >&2; echo "planet-net.sh: the echo server exited" >&2; false; }
    sleep 0.1
  done
  in_ns "$remote" ss -Hltn 'sport = :7' | grep -q . ||
    { echo "planet-net.sh: the remote site's echo server does not listen" >&2; false; }
  in_ns "$remote" ss -Hltn 'sport = :5201' | grep -q . ||
    { echo "planet-net.sh: the remote site's iperf3 server does not listen" >&2; false; }
  mv "$run_dir/topology.new" "$run_dir/topology"
  trap - ERR
  echo "planet network $prefix up: $nodes node(s), remote site $v4_site.2 / ${v6_site}:2 ($run_dir/topology)"
}

case "$action" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) usage ;;
esac
