#!/usr/bin/env bash
# PlanetLab NG on one machine: a private PostgreSQL, plcd on loopback, and a walk
# through what PLC is for, driven with plcctl exactly as people would type it:
# admin creates a site -> its PI -> the PI adds a user, who uploads an SSH key ->
# the site's node is registered with its own Ed25519 key -> the PI creates a slice,
# adds the user and the node -> the user gets a signed ticket -> the node logs in
# with its key and sees the slice in its desired state -> sliverd on that node (run
# as root) builds the sliver from namespaces, cgroups and an idmapped overlay ->
# Bob logs into it with `ssh princeton_demo@node`, as PlanetLab users did -> sliverd
# restarts and the sliver keeps running -> the slice leaves the node and the sliver
# goes.
#
# Usage: deploy/local-planet.sh [--keep] [--no-build] [--build-dir DIR] [--state-dir DIR] [--port N]
#                              [--node-volume SIZE]
#        deploy/local-planet.sh stop [--build-dir DIR] [--state-dir DIR]
#   --keep        leave PostgreSQL and plcd running afterwards (prints how to use them)
#   --no-build    use binaries already built in the build directory
#   --build-dir   build directory (default: build)
#   --state-dir   where the planet keeps its database, logs and keys
#                 (default: <build dir>/planet; wiped at each start)
#   --port        plcd's port on 127.0.0.1 (default: 8620); the node uses the next
#                 two (sliverd's NodeManager and the node's sshd)
#   --node-volume size of node1's sliver storage (a sparse btrfs image in the state
#                 directory), bytes or with a K/M/G suffix (default: 4G, or half of
#                 the space free there when that is less; at least 1G)
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
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "local-planet.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
planet=${planet:-$build/planet}
case "$planet" in /*) ;; *) planet="$repo/$planet" ;; esac

stop_planet() {
  for name in sliverd sshd; do
    if [ -f "$planet/$name.pid" ]; then
      pid=$(cat "$planet/$name.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$planet/$name.pid"
    fi
  done
  # Slivers outlive sliverd by design: take them, their accounts and storage down.
  if [ -f "$planet/node1/sliverd.conf" ] && [ -x "$build/sliverd/sliverd" ]; then
    "$build/sliverd/sliverd" --config "$planet/node1/sliverd.conf" decommission \
      >>"$planet/node1/decommission.log" 2>&1 ||
      echo "local-planet.sh: decommission failed, see $planet/node1/decommission.log" >&2
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

step "Starting plcd on 127.0.0.1:$port"
cat >"$planet/plcd.conf" <<CONF
# plcd configuration of the local planet (see deploy/plcd.conf for every key).
listen = 127.0.0.1:$port
database = $db
log_level = info
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

step "The PI registers the site's node with the node's own Ed25519 key"
as alice node keygen --out "$planet/home/node1.key"
as alice node add node1.princeton.planet.test --site princeton \
  --public-key-file "$planet/home/node1.key.pub"

step "The PI creates a slice, adds Bob and the node; Bob sets his initscript"
as alice slice add princeton_demo --description "PlanetLab NG demo slice" \
  --url https://planet.test/demo
as alice slice members add princeton_demo bob@princeton.edu
as bob slice nodes add princeton_demo node1.princeton.planet.test
as bob slice tag set princeton_demo initscript 'echo hello from princeton_demo'
as bob slice tag set princeton_demo vref busybox
as bob slice show princeton_demo
as bob slice tag list princeton_demo

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
node_dir="$planet/node1"
ssh_port=$((port + 2))
mkdir -p "$node_dir/state" "$node_dir/run" "$node_dir/images"
# sshd runs the keys command as nobody and sliver-enter trusts only root-owned
# paths: the node's directories must be root's and traversable.
chmod 0711 "$planet" "$node_dir" "$node_dir/state" "$node_dir/run"

step "The node's operator builds the busybox reference image (the slice's vref)"
show "deploy/images/build-image.sh busybox $node_dir/images/busybox"
bash deploy/images/build-image.sh busybox "$node_dir/images/busybox"

step "The node's sshd: slice accounts log in with their members' keys, into their sliver"
sshd_work=$(mktemp -d /run/plng-sshd.XXXXXX)
echo "$sshd_work" >"$planet/sshd.workdir"
bash deploy/sshd/start-node-sshd.sh --port "$ssh_port" --state-dir "$node_dir/state" \
  --run-dir "$node_dir/run" --bin-dir "$build/sliverd" --work-dir "$sshd_work" \
  >"$node_dir/sshd.log" 2>&1 &
echo $! >"$planet/sshd.pid"
echo "sshd on 127.0.0.1:$ssh_port (log $node_dir/sshd.log)"

step "sliverd starts on node1, logs in to PLC with the node key and follows its state"
# node1's sliver storage: what the host can back, never more (sliverd refuses a
# sparse volume larger than the space free). One sliver gets at most the volume
# less its reserve (storage_reserve_pct); sliverctl says when a quota was clamped.
free_bytes=$(( $(stat -f -c '%a * %S' "$node_dir/state") ))
if [ -n "$node_volume" ]; then
  volume_bytes=$(numfmt --from=iec "$node_volume" 2>/dev/null) ||
    fail "--node-volume $node_volume is not a size (bytes, or with a K/M/G suffix)"
else
  volume_bytes=$(( 4 << 30 ))
  [ "$volume_bytes" -le $(( free_bytes / 2 )) ] || volume_bytes=$(( free_bytes / 2 ))
fi
[ "$volume_bytes" -ge $(( 1 << 30 )) ] ||
  fail "node1's storage volume would be $(( volume_bytes >> 20 )) MiB: free space in $node_dir, or pass --node-volume (at least 1G)"
[ "$volume_bytes" -le "$free_bytes" ] ||
  fail "--node-volume $node_volume exceeds the $(( free_bytes >> 20 )) MiB free in $node_dir"
echo "node1's sliver storage: $(( volume_bytes >> 20 )) MiB (of $(( free_bytes >> 20 )) MiB free)"
cat >"$node_dir/sliverd.conf" <<CONF
# sliverd configuration of the local planet's node1 (deploy/sliverd.conf has every key).
hostname = node1.princeton.planet.test
plc_address = 127.0.0.1:$port
node_key_file = $planet/home/node1.key
state_dir = $node_dir/state
run_dir = $node_dir/run
images_dir = $node_dir/images
listen = 127.0.0.1:$((port + 1))
sliver_init = $build/sliverd/sliver-init
sliver_enter = $sshd_work/libexec/sliver-enter
slice_accounts = true
storage_volume_bytes = $volume_bytes
# sliverd itself (its own cgroup, beneath the one this script runs in; the
# slivers' are separate): a slice cannot make it take the host's memory.
daemon_memory_max_bytes = 268435456
daemon_tasks_max = 1024
stop_grace_ms = 2000
delete_grace_s = 0
reconcile_interval_s = 5
CONF
# sliverd turns dev.tty.legacy_tiocsti off (disable_legacy_tiocsti); the planet puts
# the host's value back when it stops.
tiocsti=/proc/sys/dev/tty/legacy_tiocsti
if [ -f "$tiocsti" ] && [ ! -f "$planet/legacy_tiocsti.before" ]; then
  cat "$tiocsti" >"$planet/legacy_tiocsti.before"
fi
start_sliverd() {
  "$sliverd_bin" --config "$node_dir/sliverd.conf" serve >>"$node_dir/sliverd.log" 2>&1 &
  echo $! >"$planet/sliverd.pid"
}
start_sliverd
# sliverd bounded its own memory (on this hybrid host: the v1 memory controller).
sliverd_memory_limit() {
  local pid cgroup
  pid=$(cat "$planet/sliverd.pid")
  cgroup=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' "/proc/$pid/cgroup" 2>/dev/null)
  if [ -n "$cgroup" ]; then
    echo "/sys/fs/cgroup/memory$cgroup/memory.limit_in_bytes"
  else
    echo "/sys/fs/cgroup$(sed -n 's/^0::\(.*\)/\1/p' "/proc/$pid/cgroup")/memory.max"
  fi
}
for _ in $(seq 50); do
  limit_file=$(sliverd_memory_limit)
  [ "$(cat "$limit_file" 2>/dev/null)" = 268435456 ] && break
  sleep 0.1
done
case "$limit_file" in */daemon/*) ;; *) fail "sliverd did not move into its own cgroup ($limit_file)" ;; esac
[ "$(cat "$limit_file" 2>/dev/null)" = 268435456 ] ||
  fail "sliverd's memory is not limited ($limit_file: $(cat "$limit_file" 2>/dev/null))"
echo "sliverd's memory limit: $(cat "$limit_file") bytes ($limit_file)"
sliverctl() {
  show "sliverctl $*"
  "$sliverctl_bin" --socket "$node_dir/run/api/sliverd.sock" "$@"
}
# Prints the pid of the slice's running sliver-init, or nothing.
sliver_init_pid() {
  "$sliverctl_bin" --socket "$node_dir/run/api/sliverd.sock" --json get "$1" 2>/dev/null |
    grep -q '"state": *"running"' || return 0
  "$sliverctl_bin" --socket "$node_dir/run/api/sliverd.sock" --json get "$1" 2>/dev/null |
    sed -n 's/.*"init_pid": *\([0-9]*\).*/\1/p'
}
wait_running() {
  for _ in $(seq 300); do
    pid=$(sliver_init_pid "$1")
    [ -n "$pid" ] && { echo "$pid"; return 0; }
    kill -0 "$(cat "$planet/sliverd.pid")" 2>/dev/null || { tail -20 "$node_dir/sliverd.log" >&2; fail "sliverd exited"; }
    sleep 0.2
  done
  tail -20 "$node_dir/sliverd.log" >&2
  fail "sliver $1 did not start within 60 s"
}
init_pid=$(wait_running princeton_demo)
sliverctl list
echo "princeton_demo's sliver-init is host pid $init_pid"

step "Bob logs into his sliver: ssh princeton_demo@node1"
for _ in $(seq 100); do
  ss -Hltn "sport = :$ssh_port" 2>/dev/null | grep -q . && break
  kill -0 "$(cat "$planet/sshd.pid")" 2>/dev/null || { cat "$node_dir/sshd.log" >&2; fail "sshd exited"; }
  sleep 0.1
done
ssh_opts=(-i "$planet/home/bob_ed25519" -p "$ssh_port" -o BatchMode=yes
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
show "ssh -p $ssh_port princeton_demo@127.0.0.1 'hostname; id; ps; cat /var/log/sliver-init.log'"
ssh "${ssh_opts[@]}" princeton_demo@127.0.0.1 \
  'echo "hostname: $(hostname)"; id; echo "processes visible in the sliver:"; ps; cat /var/log/sliver-init.log' \
  | tee "$planet/ssh.txt" || fail "ssh into the sliver failed (see $node_dir/sshd.log)"
grep -q "hostname: princeton_demo" "$planet/ssh.txt" || fail "ssh did not land in the sliver"
grep -q "uid=0(root)" "$planet/ssh.txt" || fail "the login is not root inside the sliver"
grep -q "hello from princeton_demo" "$planet/ssh.txt" || fail "the initscript did not run"

step "Someone without a member's key is refused"
ssh-keygen -q -t ed25519 -N '' -C mallory -f "$planet/home/mallory_ed25519"
if ssh -i "$planet/home/mallory_ed25519" "${ssh_opts[@]:2}" princeton_demo@127.0.0.1 true \
  2>"$planet/mallory.txt"; then
  fail "a stranger's key logged in"
fi
cat "$planet/mallory.txt"

step "sliverd restarts; the sliver keeps running and is re-adopted, not rebuilt"
kill -TERM "$(cat "$planet/sliverd.pid")"
for _ in $(seq 100); do kill -0 "$(cat "$planet/sliverd.pid")" 2>/dev/null || break; sleep 0.1; done
kill -0 "$init_pid" 2>/dev/null || fail "the sliver died with sliverd"
echo "sliverd stopped; sliver-init $init_pid still runs"
start_sliverd
again=$(wait_running princeton_demo)
[ "$again" = "$init_pid" ] || fail "the sliver was restarted ($init_pid -> $again)"
echo "sliverd is back and re-adopted princeton_demo (sliver-init still pid $again)"

step "Nothing in the sliver reaches PLC's database"
# The address plcd uses, probed from inside Bob's sliver, which shares the node's
# network: TCP to the database's host and port, and its socket directory.
db_host=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$db")
db_port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$db")
case "$db_host" in /*) tcp_host=127.0.0.1 ;; *) tcp_host=$db_host ;; esac
show "ssh -p $ssh_port princeton_demo@127.0.0.1 'nc -w 2 $tcp_host $db_port; ls $db_host'"
ssh "${ssh_opts[@]}" princeton_demo@127.0.0.1 \
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

step "The slice leaves the node at PLC; sliverd stops and deletes the sliver"
removed_at=$(date +%s.%N)
as bob slice nodes remove princeton_demo node1.princeton.planet.test
for _ in $(seq 300); do
  "$sliverctl_bin" --socket "$node_dir/run/api/sliverd.sock" get princeton_demo >/dev/null 2>&1 || break
  sleep 0.2
done
if "$sliverctl_bin" --socket "$node_dir/run/api/sliverd.sock" get princeton_demo >/dev/null 2>&1; then
  fail "the sliver is still there"
fi
kill -0 "$init_pid" 2>/dev/null && fail "sliver-init $init_pid still runs"
sliverctl list
echo "the sliver was gone $(awk -v a="$removed_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the change at PLC (sliverd's stop grace of 2 s included)"

echo
echo "Local planet walk-through complete."
if [ "$keep" = 1 ]; then
  cat <<MSG

PLC is running: plcd on 127.0.0.1:$port (log $planet/plcd.log), PostgreSQL at '$db'
(log $planet/pg/server.log; plng-pg-tmp starts it again if it dies).
node1 runs sliverd (log $planet/node1/sliverd.log, local API $planet/node1/run/sliverd.sock)
and sshd on 127.0.0.1:$((port + 2)); add the slice back to see its sliver again:
  PLCCTL_CONFIG=$planet/home/bob.conf $plcctl_bin --plc 127.0.0.1:$port slice nodes add princeton_demo node1.princeton.planet.test
Use it as the admin:  PLCCTL_CONFIG=$planet/home/admin.conf $plcctl_bin --plc 127.0.0.1:$port site list
Stop it:              deploy/local-planet.sh stop
MSG
fi
