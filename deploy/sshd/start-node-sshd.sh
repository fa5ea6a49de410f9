#!/bin/bash
# Runs a private sshd for one node instance on ADDR:PORT (default 127.0.0.1),
# serving slice logins exactly as a node's own sshd does with
# planetlab-slices.conf: keys from sliverd-keys, sliver-enter as the login shell.
# For the local planet and tests; a real node installs the snippet into its
# system sshd (README.md).
#
#   start-node-sshd.sh --port P --state-dir D --run-dir R --bin-dir B [--work-dir W]
#                      [--listen ADDR] [--instance NAME --netns NETNS]
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
# Several node instances on one host (the local planet) share W, and so one
# login shell for the host's slice accounts: each runs this script inside its
# own network namespace (nsenter --net=NETNS) with --instance NAME --netns NETNS
# --listen <its address>, which writes W/libexec/sliver-enter.d/NAME.conf (D, R
# and NETNS) instead of sliver-enter.conf; the login tools pick the instance
# whose namespace they run in (sliverd/login/slice_login.h). Its host key and
# sshd_config go to W/NAME; on exit it removes those and its .conf.
#
# Runs in the foreground until SIGTERM/SIGINT; sshd logs to stderr. Needs root.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

port= state_dir= run_dir= bin_dir= work_dir= listen=127.0.0.1 instance= netns=
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --run-dir) run_dir=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --work-dir) work_dir=$2; shift 2 ;;
    --listen) listen=$2; shift 2 ;;
    --instance) instance=$2; shift 2 ;;
    --netns) netns=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "start-node-sshd.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$port" ] && [ -n "$state_dir" ] && [ -n "$run_dir" ] && [ -n "$bin_dir" ] || usage
if [ -n "$instance$netns" ]; then
  [[ "$instance" =~ ^[a-z0-9][a-z0-9_-]*$ ]] && [ -n "$netns" ] ||
    { echo "start-node-sshd.sh: --instance NAME ([a-z0-9_-]) and --netns go together" >&2; exit 2; }
  [ "$(stat -L -c %i "$netns" 2>/dev/null)" = "$(stat -L -c %i /proc/self/ns/net)" ] ||
    { echo "start-node-sshd.sh: not running in --netns $netns (start it with nsenter --net=$netns)" >&2; exit 1; }
fi
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
if [ -n "$instance" ]; then
  conf_file=$work_dir/libexec/sliver-enter.d/$instance.conf
  sshd_dir=$work_dir/$instance
else
  conf_file=$work_dir/libexec/sliver-enter.conf
  sshd_dir=$work_dir
fi
cleanup() {
  if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || true; wait "$sshd_pid" 2>/dev/null || true; fi
  if [ "$remove_work_dir" = yes ]; then
    rm -rf -- "$work_dir"
  elif [ -n "$instance" ]; then
    rm -rf -- "$conf_file" "$sshd_dir"
  fi
}
trap cleanup EXIT
trap 'exit 0' TERM INT HUP

install -d -o root -g root -m 0755 "$work_dir" "$work_dir/libexec" "$sshd_dir"
install -o root -g root -m 4755 "$bin_dir/sliver-enter" "$work_dir/libexec/sliver-enter"
install -o root -g root -m 0755 "$bin_dir/sliverd-keys" "$work_dir/libexec/sliverd-keys"
if [ -n "$instance" ]; then
  install -d -o root -g root -m 0755 "$work_dir/libexec/sliver-enter.d"
  printf 'state_dir=%s\nrun_dir=%s\nnetns=%s\n' "$state_dir" "$run_dir" "$netns" > "$conf_file.new"
  chmod 0644 "$conf_file.new"
  mv "$conf_file.new" "$conf_file"
else
  printf 'state_dir=%s\nrun_dir=%s\n' "$state_dir" "$run_dir" > "$conf_file"
  chmod 0644 "$conf_file"
fi
rm -f "$sshd_dir/ssh_host_ed25519_key" "$sshd_dir/ssh_host_ed25519_key.pub"
ssh-keygen -q -t ed25519 -N '' -C "plng-node-sshd${instance:+ $instance}" -f "$sshd_dir/ssh_host_ed25519_key"
# sshd's privilege separation directory (the openssh-server package's own).
install -d -m 0755 /run/sshd

cat > "$sshd_dir/sshd_config" <<CONF
# Private sshd for a PlanetLab NG node instance (deploy/sshd/start-node-sshd.sh).
Port $port
ListenAddress $listen
HostKey $sshd_dir/ssh_host_ed25519_key
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
  >> "$sshd_dir/sshd_config"

/usr/sbin/sshd -t -f "$sshd_dir/sshd_config"
echo "start-node-sshd.sh: sshd${instance:+ of $instance} on $listen:$port; slice accounts' login shell: $work_dir/libexec/sliver-enter" >&2
/usr/sbin/sshd -D -e -f "$sshd_dir/sshd_config" &
sshd_pid=$!
wait "$sshd_pid"
