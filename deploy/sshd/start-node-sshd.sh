#!/bin/bash
# Runs a private sshd for one node instance on 127.0.0.1:PORT, serving slice
# logins exactly as a node's own sshd does with planetlab-slices.conf: keys from
# sliverd-keys, sliver-enter as the login shell. For the local planet and tests;
# a real node installs the snippet into its system sshd (README.md).
#
#   start-node-sshd.sh --port P --state-dir D --run-dir R --bin-dir B [--work-dir W]
#
# B holds the built sliver-enter and sliverd-keys (build/sliverd). They are
# installed into W/libexec with W/libexec/sliver-enter.conf (state_dir=D,
# run_dir=R): sliver-enter setuid root, since it must join a sliver's user
# namespace. sshd refuses an AuthorizedKeysCommand under a directory others can
# write, so W must be under root-owned directories writable only by root: the
# default is a fresh /run/plng-sshd.XXXXXX, removed on exit (a W you name is
# kept). Slice accounts must have W/libexec/sliver-enter as their login shell
# (sliverd's slice accounts take it as their login shell setting).
#
# Runs in the foreground until SIGTERM/SIGINT; sshd logs to stderr. Needs root.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

port= state_dir= run_dir= bin_dir= work_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --run-dir) run_dir=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --work-dir) work_dir=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "start-node-sshd.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$port" ] && [ -n "$state_dir" ] && [ -n "$run_dir" ] && [ -n "$bin_dir" ] || usage
[ "$(id -u)" = 0 ] || { echo "start-node-sshd.sh: needs root (installs a setuid sliver-enter)" >&2; exit 1; }
for tool in sliver-enter sliverd-keys; do
  [ -x "$bin_dir/$tool" ] || { echo "start-node-sshd.sh: no $bin_dir/$tool (build it first)" >&2; exit 1; }
done
state_dir=$(realpath -m "$state_dir")
run_dir=$(realpath -m "$run_dir")
snippet="$(dirname "$(realpath "$0")")/planetlab-slices.conf"

remove_work_dir=no
if [ -z "$work_dir" ]; then
  work_dir=$(mktemp -d /run/plng-sshd.XXXXXX)
  remove_work_dir=yes
fi
work_dir=$(realpath -m "$work_dir")
sshd_pid=
cleanup() {
  if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || true; wait "$sshd_pid" 2>/dev/null || true; fi
  if [ "$remove_work_dir" = yes ]; then rm -rf -- "$work_dir"; fi
}
trap cleanup EXIT
trap 'exit 0' TERM INT HUP

install -d -o root -g root -m 0755 "$work_dir" "$work_dir/libexec"
install -o root -g root -m 4755 "$bin_dir/sliver-enter" "$work_dir/libexec/sliver-enter"
install -o root -g root -m 0755 "$bin_dir/sliverd-keys" "$work_dir/libexec/sliverd-keys"
printf 'state_dir=%s\nrun_dir=%s\n' "$state_dir" "$run_dir" > "$work_dir/libexec/sliver-enter.conf"
chmod 0644 "$work_dir/libexec/sliver-enter.conf"
rm -f "$work_dir/ssh_host_ed25519_key" "$work_dir/ssh_host_ed25519_key.pub"
ssh-keygen -q -t ed25519 -N '' -C "plng-node-sshd" -f "$work_dir/ssh_host_ed25519_key"
# sshd's privilege separation directory (the openssh-server package's own).
install -d -m 0755 /run/sshd

cat > "$work_dir/sshd_config" <<CONF
# Private sshd for a PlanetLab NG node instance (deploy/sshd/start-node-sshd.sh).
Port $port
ListenAddress 127.0.0.1
HostKey $work_dir/ssh_host_ed25519_key
PidFile none
UsePAM no
PermitRootLogin no
AllowGroups plng-slices
AuthorizedKeysFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
CONF
sed "s#/usr/libexec/planetlab/sliverd-keys#$work_dir/libexec/sliverd-keys#" "$snippet" \
  >> "$work_dir/sshd_config"

/usr/sbin/sshd -t -f "$work_dir/sshd_config"
echo "start-node-sshd.sh: sshd on 127.0.0.1:$port; slice accounts' login shell: $work_dir/libexec/sliver-enter" >&2
/usr/sbin/sshd -D -e -f "$work_dir/sshd_config" &
sshd_pid=$!
wait "$sshd_pid"
