#!/usr/bin/env bash
# PlanetLab NG on one machine: a private PostgreSQL, plcd, a planet of N nodes, and
# a walk through what PLC is for, driven with plcctl exactly as people would type it:
# admin creates a site -> its PI -> the PI adds a user, who uploads an SSH key ->
# the site's nodes are registered, each with its own Ed25519 key -> the PI creates a
# slice, adds the user and every node -> the user gets a signed ticket -> a node logs
# in with its key and sees the slice in its desired state -> on each node (as root)
# sliverd builds the sliver from namespaces, cgroups and an idmapped overlay -> Bob
# logs into each with `ssh princeton_demo@<node>`, as PlanetLab users did, and pings
# the other node and a remote site from there -> sliverd restarts and the sliver
# keeps running -> the slice leaves node1; its sliver goes, node2's stays.
#
# The nodes are network namespaces on a bridge standing for the Internet, with a
# remote site (echo, iperf3, ping) one router away (deploy/planet-net.sh; docs/vnet.md,
# "Local planet"); each runs its own sliverd and its own sshd on its own address.
#
# Usage: deploy/local-planet.sh [--nodes N] [--keep] [--no-build] [--build-dir DIR]
#                              [--state-dir DIR] [--port N] [--node-volume SIZE]
#        deploy/local-planet.sh stop [--build-dir DIR] [--state-dir DIR]
#   --nodes       how many nodes (default 2)
#   --keep        leave the planet running afterwards (prints how to use it)
#   --no-build    use binaries already built in the build directory
#   --build-dir   build directory (default: build)
#   --state-dir   where the planet keeps its database, logs and keys
#                 (default: <build dir>/planet; wiped at each start)
#   --port        plcd's port (default: 8620), on 127.0.0.1 and, as root, on the
#                 host's address on the planet's bridge; each node's sliverd
#                 (NodeManager) uses the next one on its own address
#                 (the portal and JSON API: port + 60, on 127.0.0.1)
#   --node-volume size of each node's sliver storage (a sparse btrfs image in the
#                 state directory), bytes or with a K/M/G suffix (default: 4G, or
#                 what the space free there allows for every node; at least 1G)
# The node half needs root (namespaces, cgroups, mounts); without root it is
# skipped with a note. Every step is checked; the script exits non-zero at the first one that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

build=build
keep=0
planet=
do_build=1
port=8620
node_volume=
nodes=2
action=run
while [ $# -gt 0 ]; do
  case "$1" in
    stop) action=stop ;;
    --keep) keep=1 ;;
    --no-build) do_build=0 ;;
    --build-dir) build=$2; shift ;;
    --state-dir) planet=$2; shift ;;
    --port) port=$2; shift ;;
    --node-volume) node_volume=$2; shift ;;
    --nodes) nodes=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "local-planet.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "local-planet.sh: --nodes must be 1..99" >&2; exit 2; }
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
planet=${planet:-$build/planet}
case "$planet" in /*) ;; *) planet="$repo/$planet" ;; esac

# The planet's network namespaces are named after plcd's port, so planets with
# other ports and state directories do not meet (only one may have a host link).
net_prefix=plng-p$port

stop_planet() {
  local dir name pid
  for dir in "$planet"/node*/; do
    [ -d "$dir" ] || continue
    dir=${dir%/}
    for name in sliverd sshd; do
      if [ -f "$dir/$name.pid" ]; then
        pid=$(cat "$dir/$name.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/$name.pid"
      fi
    done
  done
  # Slivers outlive sliverd by design: take them, their accounts and storage down,
  # from the node's own cgroup (where its sliverd found its slivers).
  for dir in "$planet"/node*/; do
    dir=${dir%/}
    if [ -f "$dir/sliverd.conf" ] && [ -x "$build/sliverd/sliverd" ]; then
      (enter_node_cgroup "$dir" && exec "$build/sliverd/sliverd" --config "$dir/sliverd.conf" decommission) \
        >>"$dir/decommission.log" 2>&1 ||
        echo "local-planet.sh: decommission failed, see $dir/decommission.log" >&2
    fi
    remove_node_cgroup "$dir"
  done
  if [ -f "$planet/net.prefix" ]; then
    bash "$repo/deploy/planet-net.sh" down --prefix "$(cat "$planet/net.prefix")" ||
      echo "local-planet.sh: the planet's network was not fully removed" >&2
    rm -f "$planet/net.prefix"
  fi
  if [ -f "$planet/legacy_tiocsti.before" ]; then
    cat "$planet/legacy_tiocsti.before" >/proc/sys/dev/tty/legacy_tiocsti 2>/dev/null || true
    rm -f "$planet/legacy_tiocsti.before"
  fi
  if [ -f "$planet/sshd.workdir" ]; then rm -rf -- "$(cat "$planet/sshd.workdir")"; rm -f "$planet/sshd.workdir"; fi
  for name in plcd pg; do
    if [ -f "$planet/$name.pid" ]; then
      pid=$(cat "$planet/$name.pid")
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      fi
      rm -f "$planet/$name.pid"
    fi
  done
}

# Each node's sliverd keeps its cgroups (<dir>/daemon, <dir>/slivers) beneath
# the cgroup it starts in: each node starts in a cgroup of its own, made beneath
# this script's cgroup in the cgroup2 tree and in each v1 hierarchy sliverd's
# driver uses, so no node sees another's slivers. Prints those directories.
node_cgroup_dirs() {
  local name=$1 id controllers path target fsroot options c use all
  while IFS=: read -r id controllers path; do
    if [ "$id" = 0 ] && [ -z "$controllers" ]; then
      target=$(findmnt -rn -t cgroup2 -o TARGET | head -1)
      [ -n "$target" ] && echo "$target${path%/}/$name"
      continue
    fi
    use=0
    for c in ${controllers//,/ }; do case "$c" in cpu|cpuacct|memory|pids|blkio) use=1 ;; esac; done
    [ "$use" = 1 ] || continue
    while read -r target fsroot options; do
      all=1
      for c in ${controllers//,/ }; do case ",$options," in *",$c,"*) ;; *) all=0 ;; esac; done
      if [ "$all" = 1 ] && [ "$fsroot" = / ]; then echo "$target${path%/}/$name"; break; fi
    done < <(findmnt -rn -t cgroup -o TARGET,FSROOT,OPTIONS)
  done </proc/self/cgroup
}
# Moves the calling (sub)shell into the node's cgroups (listed in <node dir>/cgroups).
enter_node_cgroup() {
  local dir=$1 cgroup
  [ -f "$dir/cgroups" ] || return 0
  while read -r cgroup; do
    mkdir -p "$cgroup" && echo "$BASHPID" >"$cgroup/cgroup.procs" || return 1
  done <"$dir/cgroups"
}
remove_node_cgroup() {
  local dir=$1 cgroup
  [ -f "$dir/cgroups" ] || return 0
  while read -r cgroup; do
    [ -d "$cgroup" ] && find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$cgroup" ] && echo "local-planet.sh: cgroup $cgroup is not empty; left in place" >&2
  done <"$dir/cgroups"
  rm -f "$dir/cgroups"
}

if [ "$action" = stop ]; then
  stop_planet
  echo "local planet stopped (state kept in $planet; remove it to start afresh)"
  exit 0
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
fail() { echo "local-planet.sh: FAILED: $*" >&2; exit 1; }

if [ "$do_build" = 1 ]; then
  step "Installing packages and building plcd, plcctl"
  if [ "$(id -u)" -eq 0 ]; then bash deploy/install-deps.sh; fi
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  targets=(plcd plcctl plng-pg-tmp)
  # The web portal (web/), when node and npm are there to build it.
  if command -v npm >/dev/null && command -v node >/dev/null; then targets+=(plng_portal); fi
  if [ "$(id -u)" -eq 0 ]; then
    targets+=(sliverd sliver-init sliver-enter sliverd-keys sliverctl)
  fi
  cmake --build "$build" -j2 --target "${targets[@]}"
fi
plcd="$build/plc/plcd"
plcctl_bin="$build/cli/plcctl"
pgtmp="$build/tests/plng-pg-tmp"
for b in "$plcd" "$plcctl_bin" "$pgtmp"; do
  [ -x "$b" ] || fail "$b is missing: build first (drop --no-build)"
done

stop_planet
if [ -d "$planet" ]; then
  # A previous planet's node may still hold mounts (its storage volume) here.
  if grep -q " $planet/" /proc/self/mountinfo; then
    fail "$planet still has mounts; run 'deploy/local-planet.sh stop' first"
  fi
fi
rm -rf "$planet"
mkdir -p "$planet/home"
if [ "$keep" = 0 ]; then trap 'stop_planet' EXIT; fi

step "Starting PostgreSQL in a private data directory ($planet/pg)"
# Durable commits (fsync, synchronous_commit, full_page_writes on); a unix socket in
# $planet/pg/socket that only root and postgres may enter, and no TCP port, so nothing
# sharing the node's network (a sliver) can reach it; plcd logs in as role plcd, which
# owns PLC's database and nothing else (its password is in $planet/pg/pgpass). If the
# server dies, plng-pg-tmp starts it again at the same address.
"$pgtmp" --dir "$planet/pg" >"$planet/pg.url" 2>"$planet/pg.log" &
echo $! >"$planet/pg.pid"
for _ in $(seq 300); do
  [ -s "$planet/pg.url" ] && break
  kill -0 "$(cat "$planet/pg.pid")" 2>/dev/null || { cat "$planet/pg.log" >&2; fail "PostgreSQL did not start"; }
  sleep 0.1
done
db=$(head -1 "$planet/pg.url")
[ -n "$db" ] || fail "PostgreSQL did not report its address"
echo "database: $db"

plcd_listen=127.0.0.1:$port
if [ "$(id -u)" -eq 0 ]; then
  step "The planet's network: $nodes node(s) on a bridge standing for the Internet, a remote site beyond a router"
  show "deploy/planet-net.sh up --prefix $net_prefix --nodes $nodes --host-link"
  echo "$net_prefix" >"$planet/net.prefix"
  bash deploy/planet-net.sh up --prefix "$net_prefix" --nodes "$nodes" --host-link
  # shellcheck disable=SC1090
  . "/run/plng-net/$net_prefix/topology"
  # plcd stays on loopback and also listens on this host's address on the bridge
  # (the host link), which is how the nodes, like any PLC client, reach it.
  plcd_listen="$plcd_listen,$host_ipv4:$port"
fi

portal_listen=127.0.0.1:$((port + 60))
portal_root=""
[ -f "$build/web/dist/index.html" ] && portal_root=$(cd "$build/web/dist" && pwd)
step "Starting plcd on $plcd_listen, its portal on http://$portal_listen/"
cat >"$planet/plcd.conf" <<CONF
# plcd configuration of the local planet (see deploy/plcd.conf for every key).
listen = $plcd_listen
database = $db
log_level = info
# Prometheus' GET /metrics (docs/metrics.md), next to the gRPC port.
metrics_listen = 127.0.0.1:$((port + 1000))
# The portal and the JSON API (docs/portal.md).
portal_listen = $portal_listen
portal_root = $portal_root
portal_url = http://$portal_listen/
CONF
echo "demo-admin-password" | "$plcd" --config "$planet/plcd.conf" create-admin \
  --email admin@planet.test --first-name Planet --last-name Admin --password-stdin
"$plcd" --config "$planet/plcd.conf" serve >"$planet/plcd.log" 2>&1 &
echo $! >"$planet/plcd.pid"

# Each person has their own plcctl config file, as on their own machine.
as() {
  local who=$1; shift
  show "plcctl $*   # as $who"
  PLCCTL_CONFIG="$planet/home/$who.conf" "$plcctl_bin" --plc "127.0.0.1:$port" "$@"
}
quiet_as() {
  local who=$1; shift
  PLCCTL_CONFIG="$planet/home/$who.conf" "$plcctl_bin" --plc "127.0.0.1:$port" "$@"
}
for _ in $(seq 100); do
  quiet_as nobody --timeout 1s site list >/dev/null 2>&1 && break
  out=$(quiet_as nobody --timeout 1s site list 2>&1 || true)
  case "$out" in *UNAUTHENTICATED*) break ;; esac
  kill -0 "$(cat "$planet/plcd.pid")" 2>/dev/null || { cat "$planet/plcd.log" >&2; fail "plcd exited"; }
  sleep 0.1
done

step "The admin logs in and creates a site"
echo "demo-admin-password" | as admin login --email admin@planet.test --password-stdin
as admin site add princeton --name "Princeton University" --url https://www.princeton.edu \
  --max-slices 10

step "The admin adds the site's PI; new accounts start disabled until enabled"
printf 'alice-password\n' >"$planet/home/alice.pw"
as admin person add alice@princeton.edu --first-name Alice --last-name Smith --site princeton \
  --password-file "$planet/home/alice.pw"
as admin person enable alice@princeton.edu
as admin person add-role alice@princeton.edu pi --site princeton

step "The PI logs in and adds a researcher, who uploads an SSH key"
as alice login --email alice@princeton.edu --password-file "$planet/home/alice.pw"
printf 'bob-password-1\n' >"$planet/home/bob.pw"
as alice person add bob@princeton.edu --first-name Bob --last-name Lee --site princeton \
  --password-file "$planet/home/bob.pw"
as alice person enable bob@princeton.edu
as bob login --email bob@princeton.edu --password-file "$planet/home/bob.pw"
ssh-keygen -q -t ed25519 -N '' -C bob@laptop -f "$planet/home/bob_ed25519"
as bob key add --key-file "$planet/home/bob_ed25519.pub"
as bob whoami

step "The PI registers the site's nodes, each with its own Ed25519 key"
node_hosts=()
for k in $(seq "$nodes"); do
  as alice node keygen --out "$planet/home/node$k.key"
  as alice node add "node$k.princeton.planet.test" --site princeton \
    --public-key-file "$planet/home/node$k.key.pub"
  node_hosts+=("node$k.princeton.planet.test")
done

step "The PI creates a slice, adds Bob and every node; Bob sets his initscript"
as alice slice add princeton_demo --description "PlanetLab NG demo slice" \
  --url https://planet.test/demo
as alice slice members add princeton_demo bob@princeton.edu
as bob slice nodes add princeton_demo "${node_hosts[@]}"
as bob slice tag set princeton_demo initscript 'echo hello from princeton_demo'
as bob slice tag set princeton_demo vref busybox

step "The same API as JSON, from plcd's portal address (docs/portal.md)"
bob_token=$(sed -n 's/^token *= *//p' "$planet/home/bob.conf")
[ -n "$bob_token" ] || fail "Bob's plcctl config holds no token"
show "curl -H 'Authorization: Bearer ...' -d '{\"names\":[\"princeton_demo\"]}' http://$portal_listen/planetlab.v1.Slice/GetSlices"
curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $bob_token" \
  -d '{"names":["princeton_demo"]}' "http://$portal_listen/planetlab.v1.Slice/GetSlices" \
  >"$planet/slices.json" || fail "the JSON API did not answer"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["slices"][0]; print("slice", s["name"], "members", s["members"], "nodes", s["nodes"], "expires", s["expiresAt"], "renewable until", s["maxExpiresAt"])' \
  "$planet/slices.json" || fail "GetSlices over JSON: $(cat "$planet/slices.json")"
show "curl -d '{}' http://$portal_listen/planetlab.v1.Auth/WhoAmI   # no token"
curl -sS -H 'Content-Type: application/json' -d '{}' "http://$portal_listen/planetlab.v1.Auth/WhoAmI"
echo
if [ -n "$portal_root" ]; then
  echo "the portal: open http://$portal_listen/ in a browser (log in as bob@princeton.edu)"
else
  echo "(the portal's pages are not built: node and npm are missing; the JSON API works without them)"
fi
# The admin reserves a port for the slice on its nodes (only it may bind it) and
# grants it raw sockets (CAP_NET_RAW: stock ping and traceroute).
as admin slice tag set princeton_demo ports tcp:8000
as admin slice tag set princeton_demo capabilities CAP_NET_RAW
as bob slice show princeton_demo
as bob slice tag list princeton_demo
# A second slice on node1, to show what one slice cannot do to another.
as alice slice add princeton_other --description "Another slice of the site"
as alice slice members add princeton_other bob@princeton.edu
as alice slice tag set princeton_other vref busybox
as bob slice nodes add princeton_other "${node_hosts[0]}"

step "Bob gets a ticket signed by PLC and checks it as a node would"
as bob ticket get princeton_demo --out "$planet/home/princeton_demo.ticket" --verify \
  | tee "$planet/ticket.txt"
grep -q princeton_demo "$planet/ticket.txt" || fail "ticket does not name the slice"
grep -q node1.princeton.planet.test "$planet/ticket.txt" || fail "ticket does not name the node"
[ -s "$planet/home/princeton_demo.ticket" ] || fail "no ticket written"

step "A user may not give a slice more CPU than policy allows (PLC refuses, nothing changes)"
if as bob slice tag set princeton_demo cpu_share 1000 2>"$planet/denied.txt"; then
  fail "a user could set cpu_share"
fi
cat "$planet/denied.txt"
grep -q PERMISSION_DENIED "$planet/denied.txt" || fail "expected PERMISSION_DENIED"

step "The node logs in with its key and fetches its desired state"
as node1 node login node1.princeton.planet.test --key-file "$planet/home/node1.key" --save
as node1 sync get | tee "$planet/state.txt"
grep -q princeton_demo "$planet/state.txt" || fail "the node's state lacks the slice"

step "Every change is in the audit log"
as admin events --limit 8

if [ "$(id -u)" -ne 0 ]; then
  echo
  echo "Local planet walk-through complete (PLC half). The node half (sliverd, slivers, ssh"
  echo "login) needs root: namespaces, cgroups and mounts. Run as root to see it."
  exit 0
fi

sliverd_bin="$build/sliverd/sliverd"
sliverctl_bin="$build/sliverd/sliverctl"
for b in "$sliverd_bin" "$sliverctl_bin" "$build/sliverd/sliver-init" "$build/sliverd/sliver-enter" \
  "$build/sliverd/sliverd-keys"; do
  [ -x "$b" ] || fail "$b is missing: build first (drop --no-build)"
done
# Node k: its directory, network namespace and address (the topology's plan).
node_dir() { echo "$planet/node$1"; }
node_netns() { local var=netns_node$1; echo "${!var}"; }
node_addr() { local var=node${1}_ipv${2:-4}; echo "${!var}"; }
in_node() { local k=$1; shift; nsenter --net="$(node_netns "$k")" -- "$@"; }
mkdir -p "$planet/images"
# sshd runs the keys command as nobody and sliver-enter trusts only root-owned
# paths: the nodes' directories must be root's and traversable.
chmod 0711 "$planet"
for k in $(seq "$nodes"); do
  dir=$(node_dir "$k")
  mkdir -p "$dir/state" "$dir/run"
  chmod 0711 "$dir" "$dir/state" "$dir/run"
  node_cgroup_dirs "$net_prefix-node$k" >"$dir/cgroups"
done

step "The nodes' operator builds the busybox reference image (the slice's vref)"
show "deploy/images/build-image.sh busybox $planet/images/busybox"
bash deploy/images/build-image.sh busybox "$planet/images/busybox"

step "Each node's sshd, on the node's own address: slice accounts log in with their members' keys, into their sliver"
# The host's slice accounts (one per slice, whatever the number of nodes) share one
# login shell: one installation of the login tools, in which each node's sshd names
# its instance by its network namespace (sliver-enter.d; docs/vnet.md, "Local planet").
sshd_work=$(mktemp -d /run/plng-sshd.XXXXXX)
echo "$sshd_work" >"$planet/sshd.workdir"
for k in $(seq "$nodes"); do
  dir=$(node_dir "$k")
  in_node "$k" bash deploy/sshd/start-node-sshd.sh --port 22 --listen "$(node_addr "$k")" \
    --state-dir "$dir/state" --run-dir "$dir/run" --bin-dir "$build/sliverd" \
    --work-dir "$sshd_work" --instance "node$k" --netns "$(node_netns "$k")" \
    >"$dir/sshd.log" 2>&1 &
  echo $! >"$dir/sshd.pid"
  echo "node$k: sshd on $(node_addr "$k"):22 (log $dir/sshd.log)"
done
# Every node's instance is listed before any sliverd starts: each learns its
# neighbours, which share the slice accounts, from that list.
for k in $(seq "$nodes"); do
  for _ in $(seq 100); do [ -f "$sshd_work/libexec/sliver-enter.d/node$k.conf" ] && break; sleep 0.1; done
  [ -f "$sshd_work/libexec/sliver-enter.d/node$k.conf" ] ||
    { cat "$(node_dir "$k")/sshd.log" >&2; fail "node$k's sshd did not start"; }
done

step "sliverd starts on each node, in the node's network namespace, logs in to PLC with the node's key and follows its state"
# Each node's sliver storage: what the host can back, never more (sliverd refuses
# a sparse volume larger than the space free). One sliver gets at most the volume
# less its reserve (storage_reserve_pct); sliverctl says when a quota was clamped.
free_bytes=$(( $(stat -f -c '%a * %S' "$planet") ))
if [ -n "$node_volume" ]; then
  volume_bytes=$(numfmt --from=iec "$node_volume" 2>/dev/null) ||
    fail "--node-volume $node_volume is not a size (bytes, or with a K/M/G suffix)"
else
  volume_bytes=$(( 4 << 30 ))
  [ "$volume_bytes" -le $(( free_bytes / 2 / nodes )) ] || volume_bytes=$(( free_bytes / 2 / nodes ))
fi
[ "$volume_bytes" -ge $(( 1 << 30 )) ] ||
  fail "each node's storage volume would be $(( volume_bytes >> 20 )) MiB: free space in $planet, or pass --node-volume (at least 1G)"
[ "$volume_bytes" -le "$free_bytes" ] ||
  fail "--node-volume $node_volume exceeds the $(( free_bytes >> 20 )) MiB free in $planet"
echo "each node's sliver storage: $(( volume_bytes >> 20 )) MiB (of $(( free_bytes >> 20 )) MiB free)"
for k in $(seq "$nodes"); do
  dir=$(node_dir "$k")
  cat >"$dir/sliverd.conf" <<CONF
# sliverd configuration of the local planet's node$k (deploy/sliverd.conf has every key).
hostname = node$k.princeton.planet.test
plc_address = $host_ipv4:$port
node_key_file = $planet/home/node$k.key
state_dir = $dir/state
run_dir = $dir/run
images_dir = $planet/images
listen = $(node_addr "$k"):$((port + 1))
sliver_init = $build/sliverd/sliver-init
sliver_enter = $sshd_work/libexec/sliver-enter
slice_accounts = true
storage_volume_bytes = $volume_bytes
# sliverd itself (its own cgroup, beneath the node's; the slivers' are separate):
# a slice cannot make it take the host's memory.
daemon_memory_max_bytes = 268435456
daemon_tasks_max = 1024
stop_grace_ms = 2000
delete_grace_s = 0
reconcile_interval_s = 5
# Health reported to PLC every 5 s (default 30) so the fleet view has it at once.
status_interval_s = 5
# Flow records drained every 2 s (default 10) so the walk-through's audit is quick;
# the "who sent this?" page on the node's own address, port 80.
flow_drain_interval_s = 2
audit_listen = $(node_addr "$k"):80
plc_url = http://$host_ipv4:$port/
CONF
  # Stock ping in the slivers uses ICMP datagram sockets, allowed to the groups in
  # net.ipv4.ping_group_range: sliverd sets it in its node's namespace to cover the
  # slices' ids (config ping_sockets) and decommission restores it (docs/vnet.md).
done
# sliverd turns dev.tty.legacy_tiocsti off (disable_legacy_tiocsti); the planet puts
# the host's value back when it stops.
tiocsti=/proc/sys/dev/tty/legacy_tiocsti
if [ -f "$tiocsti" ] && [ ! -f "$planet/legacy_tiocsti.before" ]; then
  cat "$tiocsti" >"$planet/legacy_tiocsti.before"
fi
# node k's sliverd: in the node's own cgroup and network namespace (nsenter --net,
# not `ip netns exec`, which would remount /sys and hide /sys/fs/cgroup).
start_sliverd() {
  local dir
  dir=$(node_dir "$1")
  (enter_node_cgroup "$dir" &&
    exec nsenter --net="$(node_netns "$1")" -- "$sliverd_bin" --config "$dir/sliverd.conf" serve) \
    >>"$dir/sliverd.log" 2>&1 &
  echo $! >"$dir/sliverd.pid"
}
for k in $(seq "$nodes"); do start_sliverd "$k"; done
# sliverd bounded its own memory (on this hybrid host: the v1 memory controller).
sliverd_memory_limit() {
  local pid cgroup
  pid=$(cat "$(node_dir "$1")/sliverd.pid")
  cgroup=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' "/proc/$pid/cgroup" 2>/dev/null)
  if [ -n "$cgroup" ]; then
    echo "/sys/fs/cgroup/memory$cgroup/memory.limit_in_bytes"
  else
    echo "/sys/fs/cgroup$(sed -n 's/^0::\(.*\)/\1/p' "/proc/$pid/cgroup")/memory.max"
  fi
}
for k in $(seq "$nodes"); do
  for _ in $(seq 50); do
    limit_file=$(sliverd_memory_limit "$k")
    [ "$(cat "$limit_file" 2>/dev/null)" = 268435456 ] && break
    sleep 0.1
  done
  case "$limit_file" in */"$net_prefix-node$k"/daemon/*) ;; *) fail "node$k's sliverd did not move into its own cgroup ($limit_file)" ;; esac
  [ "$(cat "$limit_file" 2>/dev/null)" = 268435456 ] ||
    fail "node$k's sliverd's memory is not limited ($limit_file: $(cat "$limit_file" 2>/dev/null))"
  echo "node$k's sliverd: memory limit $(cat "$limit_file") bytes ($limit_file)"
done
node_sliverctl() {
  local k=$1; shift
  "$sliverctl_bin" --socket "$(node_dir "$k")/run/api/sliverd.sock" "$@"
}
sliverctl() {
  local k=$1; shift
  show "sliverctl $*   # on node$k"
  node_sliverctl "$k" "$@"
}
# Prints the pid of the slice's running sliver-init on node k, or nothing.
sliver_init_pid() {
  node_sliverctl "$1" --json get "$2" 2>/dev/null | grep -q '"state": *"running"' || return 0
  node_sliverctl "$1" --json get "$2" 2>/dev/null | sed -n 's/.*"init_pid": *\([0-9]*\).*/\1/p'
}
wait_running() {
  local pid
  for _ in $(seq 300); do
    pid=$(sliver_init_pid "$1" "$2")
    [ -n "$pid" ] && { echo "$pid"; return 0; }
    kill -0 "$(cat "$(node_dir "$1")/sliverd.pid")" 2>/dev/null ||
      { tail -20 "$(node_dir "$1")/sliverd.log" >&2; fail "node$1's sliverd exited"; }
    sleep 0.2
  done
  tail -20 "$(node_dir "$1")/sliverd.log" >&2
  fail "sliver $2 did not start on node$1 within 60 s"
}
# A process that has exited may stay a zombie a while, until its parent reaps it.
is_running() { case "$(ps -o stat= -p "$1" 2>/dev/null)" in '' | Z*) return 1 ;; esac; }
declare -A init_pids
for k in $(seq "$nodes"); do
  init_pids[$k]=$(wait_running "$k" princeton_demo)
  sliverctl "$k" list
  echo "princeton_demo's sliver-init on node$k is host pid ${init_pids[$k]}"
done

ssh_opts=(-i "$planet/home/bob_ed25519" -o BatchMode=yes -o ConnectTimeout=5
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
# Bob's ssh to node k, from this host (over the host link), as he would type it.
ssh_node() {
  local k=$1; shift
  ssh "${ssh_opts[@]}" "princeton_demo@$(node_addr "$k")" "$@"
}
for k in $(seq "$nodes"); do
  for _ in $(seq 100); do
    in_node "$k" ss -Hltn "sport = :22" 2>/dev/null | grep -q . && break
    kill -0 "$(cat "$(node_dir "$k")/sshd.pid")" 2>/dev/null || { cat "$(node_dir "$k")/sshd.log" >&2; fail "node$k's sshd exited"; }
    sleep 0.1
  done
done

for k in $(seq "$nodes"); do
  addr=$(node_addr "$k")
  step "Bob logs into his sliver on node$k: ssh princeton_demo@$addr"
  show "ssh princeton_demo@$addr 'hostname; id; ip -4 addr show eth0; ps; cat /var/log/sliver-init.log'"
  ssh_node "$k" \
    'echo "hostname: $(hostname)"; id; echo "the node'"'"'s network, seen from the sliver:"; ip -4 addr show eth0; echo "processes visible in the sliver:"; ps; cat /var/log/sliver-init.log' \
    | tee "$planet/ssh-node$k.txt" || fail "ssh into the sliver on node$k failed (see $(node_dir "$k")/sshd.log)"
  grep -q "hostname: princeton_demo" "$planet/ssh-node$k.txt" || fail "ssh did not land in the sliver"
  grep -q "uid=0(root)" "$planet/ssh-node$k.txt" || fail "the login is not root inside the sliver"
  grep -q "hello from princeton_demo" "$planet/ssh-node$k.txt" || fail "the initscript did not run"
  grep -q "inet $addr/" "$planet/ssh-node$k.txt" || fail "the login to $addr did not land in node$k's sliver"
done

step "PLC's fleet view: every node up (heard from within node_down_after_s), its version, load and slivers"
# A node's open stream is its contact; its health comes with its next report.
for _ in $(seq 100); do
  reported=$(quiet_as admin -o json node status --site princeton | grep -c '"software_version"' || true)
  [ "$reported" = "$nodes" ] && break
  sleep 0.2
done
[ "$reported" = "$nodes" ] ||
  fail "$reported of $nodes nodes reported their health (software_version) to PLC within 20 s"
as admin node status --site princeton | tee "$planet/node-status.txt"
for host in "${node_hosts[@]}"; do
  grep -Eq "^$host +up " "$planet/node-status.txt" || fail "$host is not shown up in plcctl node status"
done
quiet_as admin -o json node status "${node_hosts[0]}" | grep -Eq '"down": *false' ||
  fail "plcctl -o json node status does not show ${node_hosts[0]} up"

step "Someone without a member's key is refused"
ssh-keygen -q -t ed25519 -N '' -C mallory -f "$planet/home/mallory_ed25519"
if ssh -i "$planet/home/mallory_ed25519" "${ssh_opts[@]:2}" "princeton_demo@$(node_addr 1)" true \
  2>"$planet/mallory.txt"; then
  fail "a stranger's key logged in"
fi
cat "$planet/mallory.txt"

step "The planet's network: node1 reaches node2 and the remote site, one router away"
# The operator's view, in node1's network namespace (which its slivers share).
for target in ${node2_ipv4:+"$node2_ipv4"} "$remote_ipv4" ${node2_ipv6:+"$node2_ipv6"} "$remote_ipv6"; do
  show "nsenter --net=$(node_netns 1) ping -c 1 -W 2 $target"
  in_node 1 ping -c 1 -W 2 "$target" | grep -E "bytes from|packet loss" || fail "node1 cannot reach $target"
done
show "nsenter --net=$(node_netns 1) traceroute -n -q 1 $remote_ipv4"
in_node 1 traceroute -n -q 1 -w 2 -m 5 "$remote_ipv4" | tee "$planet/traceroute.txt"
awk '$1 == 1 {print $2}' "$planet/traceroute.txt" | grep -qx "$router_ipv4" ||
  fail "the route to the remote site does not pass the router $router_ipv4"

ssh_slice() {  # ssh_slice SLICE K COMMAND: Bob in SLICE's sliver on node K
  local slice=$1 k=$2; shift 2
  ssh "${ssh_opts[@]}" "$slice@$(node_addr "$k")" "$@"
}
wait_running 1 princeton_other >/dev/null

step "princeton_demo serves on its reserved port; princeton_other cannot take it"
show "ssh princeton_demo@$(node_addr 1) 'httpd -p 8000 -h /tmp/www'"
ssh_node 1 'mkdir -p /tmp/www && echo "served by princeton_demo" >/tmp/www/index.html && httpd -p 8000 -h /tmp/www' ||
  fail "princeton_demo could not serve on its reserved port 8000"
for attempt in "httpd -f -p 8000" "httpd -f -p $(node_addr 1):8000" "httpd -f -p [::]:8000" \
  "httpd -f -p [::ffff:127.0.0.1]:8000"; do
  show "ssh princeton_other@$(node_addr 1) 'timeout 2 $attempt'"
  if ssh_slice princeton_other 1 "timeout 2 $attempt" >"$planet/steal.txt" 2>&1; then
    cat "$planet/steal.txt"; fail "princeton_other bound princeton_demo's port ($attempt)"
  fi
  cat "$planet/steal.txt"
  grep -qiE "not permitted|in use" "$planet/steal.txt" ||
    fail "princeton_other was not refused the port with a reason ($attempt)"
done
show "nsenter --net=$netns_remote curl -s http://$(node_addr 1):8000/   # from the remote site"
nsenter --net="$netns_remote" -- curl -sS --max-time 5 "http://$(node_addr 1):8000/" | tee "$planet/web.txt"
grep -q "served by princeton_demo" "$planet/web.txt" || fail "princeton_demo's server does not answer"
node_sliverctl 1 ports '*'
# The kernel never picks a reserved port as another slice's ephemeral port.
show "nsenter --net=$(node_netns 1) cat /proc/sys/net/ipv4/ip_local_reserved_ports"
nsenter --net="$(node_netns 1)" -- cat /proc/sys/net/ipv4/ip_local_reserved_ports |
  tee "$planet/local-reserved.txt"
tr ',' '\n' <"$planet/local-reserved.txt" |
  awk -F- '{ hi = $2 == "" ? $1 : $2 } $1 <= 8000 && 8000 <= hi { found = 1 } END { exit !found }' ||
  fail "port 8000, reserved for princeton_demo, is not in node1's ip_local_reserved_ports"

step "Slivers reach each other and the world, not the node's own services but its sensors"
# (busybox's own wget crashes in static builds: nc speaks the HTTP request)
get_cmd='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 8000'
show "ssh princeton_other@$(node_addr 1) '$get_cmd'   # another slice's server: allowed"
ssh_slice princeton_other 1 "$get_cmd" | tee "$planet/other-get.txt"
grep -q "served by princeton_demo" "$planet/other-get.txt" ||
  fail "princeton_other cannot reach princeton_demo's server on the node"
show "ssh princeton_other@$(node_addr 1) 'nc -w 2 127.0.0.1 22'   # the node's sshd: refused"
if ssh_slice princeton_other 1 "echo | nc -w 2 127.0.0.1 22" >"$planet/sshd-probe.txt" 2>&1 &&
  grep -q "SSH-" "$planet/sshd-probe.txt"; then
  fail "a sliver reached the node's sshd on loopback"
fi
cat "$planet/sshd-probe.txt"
# The one node service slivers may ask: the sensors (docs/sensors.md).
sensor_cmd='printf "GET /load HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 33080'
show "ssh princeton_other@$(node_addr 1) '$sensor_cmd'   # the node's sensors: allowed"
ssh_slice princeton_other 1 "$sensor_cmd" | tee "$planet/sensor-get.txt"
grep -q "^load1" "$planet/sensor-get.txt" || fail "a sliver cannot read its node's sensors"

step "Stock ping and traceroute in a sliver: raw sockets made by sliverd for a slice with CAP_NET_RAW"
# busybox's ping and traceroute open raw sockets: sliverd makes each one inside the
# sliver's cgroup (seccomp user notification), where vnet-bpf polices its packets.
for target in "$(node_addr 2)" "$remote_ipv4" "$remote_ipv6"; do
  [ -n "$target" ] || continue
  case "$target" in *:*) ping_cmd="ping6 -c 1 -W 2 $target" ;; *) ping_cmd="ping -c 1 -W 2 $target" ;; esac
  show "ssh princeton_demo@$(node_addr 1) '$ping_cmd'"
  ssh_node 1 "$ping_cmd" | tee "$planet/sliver-ping.txt"
  grep -q "1 packets received" "$planet/sliver-ping.txt" || fail "ping from the sliver to $target failed"
done
show "ssh princeton_demo@$(node_addr 1) 'traceroute -n -q 1 -w 2 $remote_ipv4'"
ssh_node 1 "traceroute -n -q 1 -w 2 -m 5 $remote_ipv4" | tee "$planet/sliver-traceroute.txt"
awk '$1 == 1 {print $2}' "$planet/sliver-traceroute.txt" | grep -qx "$router_ipv4" ||
  fail "traceroute from the sliver does not show the router $router_ipv4"
show "ssh princeton_other@$(node_addr 1) 'ping -c 1 $remote_ipv4'   # no CAP_NET_RAW: refused"
if ssh_slice princeton_other 1 "ping -c 1 -W 2 $remote_ipv4" >"$planet/other-ping.txt" 2>&1; then
  cat "$planet/other-ping.txt"; fail "a slice without the raw right opened a raw socket"
fi
cat "$planet/other-ping.txt"
node_sliverctl 1 ports princeton_demo

step "Bandwidth: a slice capped at 4 Mbit/s, a node whose site caps its uplink at 3 Mbit/s"
# Each node's uplink has an HTB tree: the root at the node's limit, a class per
# slice (rate net_min_rate, ceil net_max_rate) into which vnet-bpf's egress
# program puts every packet of the slice (docs/vnet.md, "Bandwidth"). The admin
# caps princeton_demo, and node2's site limits node2's uplink (node tag
# net_node_cap); PLC's stream brings both to the nodes.
as admin slice tag set princeton_demo net_max_rate 4mbit
[ "$nodes" -lt 2 ] || as admin node tag set "${node_hosts[1]}" net_node_cap 3mbit
for _ in $(seq 100); do
  in_node 1 tc class show dev eth0 | grep -q "ceil 4Mbit" &&
    { [ "$nodes" -lt 2 ] || in_node 2 tc class show dev eth0 | grep -q "class htb 1:1 root .*rate 3Mbit"; } &&
    break
  sleep 0.1
done
show "nsenter --net=$(node_netns 1) tc class show dev eth0   # on node1"
in_node 1 tc class show dev eth0 | grep -E "1:1 root|ceil 4Mbit" || fail "node1 has no 4 Mbit/s class"
# iperf3 (in the busybox image) from the sliver to the remote site's server; the
# receiver's figure, the first second (TCP's slow start) left out.
iperf_from() {  # iperf_from K: Kbit/s princeton_demo's sliver on node K sends
  local k=$1 cmd="iperf3 -c $remote_ipv4 -p $remote_iperf3_port -t 4 -O 1 -f k"
  show "ssh princeton_demo@$(node_addr "$k") '$cmd'" >&2
  ssh_node "$k" "$cmd" | tee "$planet/iperf-node$k.txt" >&2 || fail "iperf3 from node$k's sliver failed"
  awk '/receiver/ {print int($(NF-2))}' "$planet/iperf-node$k.txt"
}
# +-15%: one TCP flow for a few seconds (the HTB classes' accuracy, +-5%, is
# tests/vnet/vnet_bandwidth_root_test's).
within() {  # within GOT WANT: GOT is WANT +-15%
  [ -n "$1" ] && [ "$1" -ge $(($2 * 85 / 100)) ] && [ "$1" -le $(($2 * 115 / 100)) ]
}
got=$(iperf_from 1)
within "$got" 4000 || fail "princeton_demo sent $got Kbit/s on node1, not 4000 +-15%"
echo "princeton_demo on node1: $got Kbit/s under its 4 Mbit/s cap"
if [ "$nodes" -ge 2 ]; then
  show "nsenter --net=$(node_netns 2) tc class show dev eth0   # on node2"
  in_node 2 tc class show dev eth0 | grep "1:1 root" || fail "node2's root class is missing"
  got=$(iperf_from 2)
  within "$got" 3000 || fail "princeton_demo sent $got Kbit/s on node2, not node2's 3000 +-15%"
  echo "princeton_demo on node2: $got Kbit/s under node2's 3 Mbit/s limit"
fi

step "Who sent this? The remote site's administrator asks node1, then PLC asks the whole planet"
# Every packet a sliver sends is recorded by vnet-bpf's egress program (slice,
# addresses, ports, packets, bytes, TCP flags); sliverd drains the records into
# hourly files, serves them on the node's web page, and ships them to PLC's
# archive (docs/vnet.md, "Flow auditing").
page="http://$(node_addr 1)/?dst=$remote_ipv4"
show "nsenter --net=$netns_remote curl -s '$page'   # from the remote site, in a browser"
for _ in $(seq 50); do
  nsenter --net="$netns_remote" -- curl -sS --max-time 5 "$page" >"$planet/audit-page.html" 2>&1 &&
    grep -q "princeton_demo" "$planet/audit-page.html" && break
  sleep 0.2
done
grep -q "princeton_demo" "$planet/audit-page.html" || { cat "$planet/audit-page.html"; fail "node1's audit page does not name princeton_demo"; }
grep -q "PlanetLab NG demo slice" "$planet/audit-page.html" || fail "node1's audit page lacks the slice's description"
sed -e 's/<[^>]*>/ /g' "$planet/audit-page.html" | tr -s ' \n' | grep -E "princeton_demo|TCP|ICMP" | head -8
show "nsenter --net=$netns_remote curl -s 'http://$(node_addr 1)/api/flows?dst=$remote_ipv4'   # the same as JSON"
nsenter --net="$netns_remote" -- curl -sS --max-time 5 "http://$(node_addr 1)/api/flows?dst=$remote_ipv4" |
  head -c 400; echo
for _ in $(seq 100); do
  quiet_as admin audit --dst "$remote_ipv4" >"$planet/audit.txt" 2>&1 && grep -q "node2.*princeton_demo" "$planet/audit.txt" &&
    grep -q "node1.*princeton_demo" "$planet/audit.txt" && break
  sleep 0.2
done
show "plcctl audit --dst $remote_ipv4   # as admin: every node's records, shipped to PLC"
cat "$planet/audit.txt"
grep -q "node1.*princeton_demo" "$planet/audit.txt" && grep -q "node2.*princeton_demo" "$planet/audit.txt" ||
  fail "PLC's archive does not have both nodes' records of princeton_demo's traffic"

step "PLC blacklists the remote site: every sliver is refused at once, and let through again"
echo_cmd="echo hello-remote | nc -w 2 $remote_ipv4 $remote_echo_port"
show "ssh princeton_demo@$(node_addr 1) '$echo_cmd'"
ssh_node 1 "$echo_cmd" | grep -q hello-remote || fail "the remote site's echo server does not answer"
entry=$(quiet_as admin -o json blacklist add "$remote_ipv4/32" --reason "demo: the remote site opted out" |
  sed -n 's/.*"entry_id": *"\{0,1\}\([0-9]*\).*/\1/p' | head -1)
[ -n "$entry" ] || fail "could not blacklist $remote_ipv4"
as admin blacklist list
refused=0
for _ in $(seq 20); do
  if ! ssh_node 1 "$echo_cmd" >"$planet/blacklisted.txt" 2>&1; then refused=1; break; fi
  sleep 0.25
done
cat "$planet/blacklisted.txt"
[ "$refused" = 1 ] || fail "the blacklisted destination was still reached"
grep -qi "not permitted" "$planet/blacklisted.txt" || fail "the refusal does not say why"
show "ssh princeton_demo@$(node_addr 1) 'ping -c 1 -W 1 $remote_ipv4'   # raw packets too"
if ssh_node 1 "ping -c 1 -W 1 $remote_ipv4" >"$planet/blacklisted-ping.txt" 2>&1; then
  cat "$planet/blacklisted-ping.txt"; fail "a raw ICMP packet reached the blacklisted destination"
fi
cat "$planet/blacklisted-ping.txt"
as admin blacklist delete "$entry"
for _ in $(seq 20); do ssh_node 1 "$echo_cmd" 2>/dev/null | grep -q hello-remote && break; sleep 0.25; done
ssh_node 1 "$echo_cmd" | grep -q hello-remote || fail "the destination stayed refused after its entry went"
echo "reached again once the entry was deleted"
node_sliverctl 1 ports princeton_demo | tee "$planet/ports-after.txt"
grep -q "refused (blacklist)" "$planet/ports-after.txt" || fail "the blacklist's refusals were not counted"

step "sliverd restarts on node1; the sliver keeps running and is re-adopted, not rebuilt"
kill -TERM "$(cat "$(node_dir 1)/sliverd.pid")"
for _ in $(seq 100); do kill -0 "$(cat "$(node_dir 1)/sliverd.pid")" 2>/dev/null || break; sleep 0.1; done
kill -0 "${init_pids[1]}" 2>/dev/null || fail "the sliver died with sliverd"
echo "sliverd stopped; sliver-init ${init_pids[1]} still runs"
start_sliverd 1
again=$(wait_running 1 princeton_demo)
[ "$again" = "${init_pids[1]}" ] || fail "the sliver was restarted (${init_pids[1]} -> $again)"
echo "sliverd is back and re-adopted princeton_demo (sliver-init still pid $again)"
# The programs and their maps stayed pinned across the restart: the port is still
# princeton_demo's, and nothing had to be learned again.
if ssh_slice princeton_other 1 "timeout 2 httpd -f -p 8000" >"$planet/steal-after.txt" 2>&1; then
  fail "princeton_other took princeton_demo's port after sliverd restarted"
fi
grep -qi "not permitted" "$planet/steal-after.txt" ||
  fail "princeton_other was not refused princeton_demo's port after the restart"
grep -q "programs swapped into the pinned links" "$(node_dir 1)/sliverd.log" ||
  fail "the restarted sliverd did not take over the pinned programs"
echo "port 8000 is still princeton_demo's; the restarted sliverd took over the pinned programs"

step "Nothing in the sliver reaches PLC's database"
# The address plcd uses, probed from inside Bob's sliver, which shares the node's
# network: TCP to the database's host and port, and its socket directory.
db_host=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$db")
db_port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$db")
case "$db_host" in /*) tcp_host=$host_ipv4 ;; *) tcp_host=$db_host ;; esac
show "ssh princeton_demo@$(node_addr 1) 'nc -w 2 $tcp_host $db_port; ls $db_host'"
ssh_node 1 \
  "if nc -w 2 $tcp_host $db_port </dev/null; then echo 'REACHED $tcp_host:$db_port'; fi
   if [ -e '$db_host' ]; then echo 'REACHED $db_host'; fi; echo 'probe done'" \
  2>&1 | tee "$planet/db-probe.txt" || true
grep -q "probe done" "$planet/db-probe.txt" || fail "the probe did not run in the sliver"
if grep -q REACHED "$planet/db-probe.txt"; then fail "a sliver reached PLC's database"; fi

step "PostgreSQL crashes (SIGKILL of its postmaster) and comes back at the same address"
pg_pid=$(head -1 "$planet/pg/data/postmaster.pid")
show "kill -KILL $pg_pid   # PostgreSQL's postmaster"
kill -KILL "$pg_pid"
for _ in $(seq 300); do
  grep -q "PostgreSQL is back" "$planet/pg.log" && break
  kill -0 "$(cat "$planet/pg.pid")" 2>/dev/null || { cat "$planet/pg.log" >&2; fail "plng-pg-tmp exited"; }
  sleep 0.2
done
grep -q "PostgreSQL is back" "$planet/pg.log" || fail "PostgreSQL did not come back"
for _ in $(seq 50); do quiet_as bob slice show princeton_demo >/dev/null 2>&1 && break; sleep 0.2; done
as bob slice show princeton_demo | grep -q node1.princeton.planet.test ||
  fail "the slice's node binding was lost"

step "The slice leaves node1 at PLC; node1's sliverd stops and deletes its sliver"
removed_at=$(date +%s.%N)
as bob slice nodes remove princeton_demo node1.princeton.planet.test
for _ in $(seq 300); do
  node_sliverctl 1 get princeton_demo >/dev/null 2>&1 || break
  sleep 0.2
done
if node_sliverctl 1 get princeton_demo >/dev/null 2>&1; then
  fail "the sliver is still there"
fi
for _ in $(seq 50); do is_running "${init_pids[1]}" || break; sleep 0.1; done
is_running "${init_pids[1]}" && fail "sliver-init ${init_pids[1]} still runs"
sliverctl 1 list
echo "the sliver was gone $(awk -v a="$removed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the change at PLC (sliverd's stop grace of 2 s included)"
if ssh_node 1 true 2>/dev/null; then fail "Bob still logs into node1, which no longer has the slice"; fi
echo "ssh princeton_demo@$(node_addr 1): refused, the slice is not on node1"
if [ "$nodes" -ge 2 ]; then
  # The slice's host account is shared by the nodes: node1 handed it to node2.
  [ "$(sliver_init_pid 2 princeton_demo)" = "${init_pids[2]}" ] || fail "node2's sliver did not keep running"
  show "ssh princeton_demo@$(node_addr 2) hostname"
  ssh_node 2 'echo "hostname: $(hostname)"; ip -4 addr show eth0' | tee "$planet/ssh-after.txt" ||
    fail "Bob can no longer log into node2"
  grep -q "inet $(node_addr 2)/" "$planet/ssh-after.txt" || fail "the login did not land in node2's sliver"
  echo "node2's sliver runs on, and Bob still logs into it"
fi

echo
echo "Local planet walk-through complete."
if [ "$keep" = 1 ]; then
  cat <<MSG

PLC is running: plcd on $plcd_listen (log $planet/plcd.log), PostgreSQL at '$db'
(log $planet/pg/server.log; plng-pg-tmp starts it again if it dies).
The portal: http://$portal_listen/ (admin@planet.test / demo-admin-password,
alice@princeton.edu / alice-password, bob@princeton.edu / bob-password-1); its JSON API
at the same address: POST /planetlab.v1.<Service>/<Method> (docs/portal.md).
$(for k in $(seq "$nodes"); do echo "node$k ($(node_addr "$k"), namespace $(node_netns "$k")): sliverd (log $(node_dir "$k")/sliverd.log, local API $(node_dir "$k")/run/api/sliverd.sock), sshd on port 22"; done)
The remote site: $remote_ipv4 / $remote_ipv6 (echo on port $remote_echo_port, iperf3 on $remote_iperf3_port).
Log into node$nodes's sliver:  ssh -i $planet/home/bob_ed25519 princeton_demo@$(node_addr "$nodes")
A command on node1:       nsenter --net=$(node_netns 1) ping $remote_ipv4
Add the slice back to node1:
  PLCCTL_CONFIG=$planet/home/bob.conf $plcctl_bin --plc 127.0.0.1:$port slice nodes add princeton_demo node1.princeton.planet.test
Use it as the admin:  PLCCTL_CONFIG=$planet/home/admin.conf $plcctl_bin --plc 127.0.0.1:$port site list
Stop it:              deploy/local-planet.sh stop --state-dir $planet
MSG
fi
