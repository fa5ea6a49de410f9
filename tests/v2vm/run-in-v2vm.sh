#!/usr/bin/env bash
# Runs one host command inside a pure cgroup v2 guest and exits with its exit code.
#
#   run-in-v2vm.sh [--timeout S] [--mem MiB] [--cpus N] [--tmpfs DIR]... [--disk DIR]...
#                  -- <command> [args...]
#
# The guest is qemu with software emulation (this host's /dev/kvm cannot boot stock
# kernels) running Debian's cloud kernel with cgroup_no_v1=all, so cgroup2 is the only
# hierarchy, mounted at /sys/fs/cgroup as systemd mounts it. The host's root is shared
# read-only over virtiofs and becomes the guest's root (switch_root, not chroot: user
# namespaces cannot be made from a chroot), so the host's own (dynamically linked)
# binaries and build tree run unchanged. /tmp, /var/tmp, /run,
# /dev/shm and /root are private tmpfs in the guest; /proc, /sys and /dev are the guest's.
# --tmpfs DIR adds an empty tmpfs at DIR. --disk DIR puts at DIR a fresh ext4 (on a loop
# device in guest memory) seeded with a copy of the host's DIR: writable, and able to
# take idmapped mounts, which neither virtiofs nor the 6.1 kernel's tmpfs can (DIR must
# not lie beneath the guest's own tmpfs: /tmp, /var/tmp, /run, /root).
#
# Exit codes: the command's own; 77 when this machine cannot run the guest (says why);
# 124 when the guest did not finish within the timeout; 125 when the guest stopped
# without reporting the command's exit code (kernel panic, init failure).
#
# Environment:
#   PLNG_V2VM_CACHE       kernel cache (default /var/cache/planetlab-ng/v2vm)
#   PLNG_V2VM_KERNEL_PKG  kernel package (default: what linux-image-cloud-amd64 depends on)
#   PLNG_V2VM_QEMU        qemu binary (default qemu-system-x86_64)
#   PLNG_V2VM_VIRTIOFSD   virtiofsd binary (default /usr/lib/qemu/virtiofsd)
#   PLNG_V2VM_APPEND      extra kernel command-line arguments
#   PLNG_V2VM_CACHE_MODE  virtiofsd cache mode (default always: the share is read-only)
#   PLNG_V2VM_TMPDIR      where the run's scratch directory goes (default /tmp)
set -euo pipefail

readonly kSkip=77 kTimedOut=124 kNoReport=125
readonly kMarker=PLNG-V2VM-EXIT

timeout_s=540
mem_mib=2048
cpus=2
extra_tmpfs=()
disks=()

usage() {
  echo "usage: $0 [--timeout S] [--mem MiB] [--cpus N] [--tmpfs DIR]... [--disk DIR]..." \
    "-- <command> [args...]" >&2
  exit 2
}
skip() {
  echo "run-in-v2vm: SKIP: $*" >&2
  exit "$kSkip"
}
say() { echo "run-in-v2vm: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --mem) mem_mib=${2:?}; shift 2 ;;
    --cpus) cpus=${2:?}; shift 2 ;;
    --tmpfs) extra_tmpfs+=("${2:?}"); shift 2 ;;
    --disk) disks+=("$(realpath -m "${2:?}")"); shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ $# -gt 0 ] || usage
case "$mem_mib" in *[!0-9]* | '') usage ;; esac
case "$cpus" in *[!0-9]* | '') usage ;; esac
case "$timeout_s" in *[!0-9]* | '') usage ;; esac

# --- can this machine run the guest? ----------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (virtiofsd serves the host's root to the guest)"
qemu=${PLNG_V2VM_QEMU:-qemu-system-x86_64}
virtiofsd=${PLNG_V2VM_VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
busybox=/bin/busybox
command -v "$qemu" >/dev/null || skip "$qemu not found (Debian: qemu-system-x86)"
[ -x "$virtiofsd" ] || skip "$virtiofsd not found (Debian 12: qemu-system-common)"
[ -x "$busybox" ] || skip "$busybox not found (Debian: busybox-static)"
# The initramfs has no C library: only a static busybox runs there.
if ldd "$busybox" >/dev/null 2>&1; then
  skip "$busybox is dynamically linked (install busybox-static)"
fi
for tool in cpio gzip dpkg-deb apt-get apt-cache flock; do
  command -v "$tool" >/dev/null || skip "$tool not found"
done

# --- the kernel: Debian's cloud kernel, downloaded and unpacked, never installed ----
cache=${PLNG_V2VM_CACHE:-/var/cache/planetlab-ng/v2vm}
mkdir -p "$cache" || skip "cannot create the kernel cache $cache"

resolveKernelPackage() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}

# Prints the directory holding the unpacked kernel package, downloading it if needed.
# Runs under the cache lock: concurrent runs share one download.
prepareKernel() {
  local pkg=${PLNG_V2VM_KERNEL_PKG:-}
  if [ -z "$pkg" ]; then
    pkg=$(resolveKernelPackage)
    if [ -z "$pkg" ]; then
      say "linux-image-cloud-amd64 unknown to apt; running apt-get update"
      apt-get update -qq >&2 || true
      pkg=$(resolveKernelPackage)
    fi
  fi
  if [ -z "$pkg" ]; then
    # Offline: fall back to whatever was unpacked before.
    local cached
    cached=$(ls -d "$cache"/linux-image-*-cloud-amd64 2>/dev/null | sort -V | tail -1)
    [ -n "$cached" ] || return 1
    say "cannot resolve linux-image-cloud-amd64; using the cached $(basename "$cached")"
    echo "$cached"
    return 0
  fi
  local dir=$cache/$pkg
  rm -rf "$cache"/.download.*  # left by a run that was killed (we hold the lock)
  if [ ! -f "$dir/.complete" ]; then
    local dl
    dl=$(mktemp -d "$cache/.download.XXXXXX")
    if ! (cd "$dl" && apt-get download "$pkg" >&2 2>/dev/null); then
      say "apt-get download $pkg failed; running apt-get update and retrying"
      apt-get update -qq >&2 || true
      (cd "$dl" && apt-get download "$pkg" >&2) || { rm -rf "$dl"; return 1; }
    fi
    mkdir "$dl/root"
    dpkg-deb -x "$dl"/*.deb "$dl/root"
    local version=${pkg#linux-image-}
    # The package ships no modules.dep (the installer runs depmod): make one so the
    # guest's modprobe can load overlay, loop, btrfs... on demand.
    "$busybox" depmod -b "$dl/root" "$version"
    rm -f "$dl"/*.deb
    rm -rf "$dir"
    mv "$dl/root" "$dir"
    rmdir "$dl"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

exec 9>"$cache/.lock"
flock 9
kernel_dir=$(prepareKernel) || skip "cannot download Debian's cloud kernel (apt-get download failed; no network?)"
flock -u 9
exec 9>&-
kernel_dir=$(realpath "$kernel_dir")
kver=$(basename "$kernel_dir")
kver=${kver#linux-image-}
vmlinuz=$kernel_dir/boot/vmlinuz-$kver
moddir=$kernel_dir/lib/modules/$kver
[ -f "$vmlinuz" ] || skip "no kernel image in $kernel_dir"
[ -f "$moddir/modules.dep" ] || skip "no modules.dep in $moddir"

# --- scratch space, and cleanup of everything this run starts ------------------------
script_started=$(date +%s.%N)
work=$(mktemp -d "${PLNG_V2VM_TMPDIR:-/tmp}/plng-v2vm.XXXXXX")
qemu_pid=
virtiofsd_pid=
cleanup() {
  local pid
  for pid in $qemu_pid $virtiofsd_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- initramfs: static busybox, the few modules virtiofs needs, /init ----------------
initrd_root=$work/initramfs
mkdir -p "$initrd_root"/{bin,dev,proc,sys,host,mods,v2vm}
cp "$busybox" "$initrd_root/bin/busybox"

# Loads a module after its dependencies (modules.dep lists them per module).
declare -A queued=()
module_order=()
queueModule() {
  local rel=$1 deps dep
  [ -n "${queued[$rel]:-}" ] && return 0
  queued[$rel]=1
  deps=$(awk -v m="$rel:" '$1 == m { $1 = ""; print; exit }' "$moddir/modules.dep")
  for dep in $deps; do queueModule "$dep"; done
  module_order+=("$rel")
}
for rel in kernel/drivers/virtio/virtio_pci.ko kernel/fs/fuse/virtiofs.ko; do
  queueModule "$rel"
done
: >"$initrd_root/mods/order"
for rel in "${module_order[@]}"; do
  cp "$moddir/$rel" "$initrd_root/mods/"
  basename "$rel" >>"$initrd_root/mods/order"
done

# The command, run by the host's bash in the guest (bash quoting both ends).
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  echo 'export HOME=/root TERM=dumb LANG=C.UTF-8'
  # Each --disk: ext4 in a sparse file on the guest's /tmp (memory), the host's copy
  # inside, mounted over the host's directory. Gone at poweroff.
  n=0
  for d in "${disks[@]}"; do
    img=/tmp/.v2vm-disk-$n.img
    printf 'truncate -s 1G %q && mkfs.ext4 -q -F %q && mkdir -p /run/v2vm/disk-%d &&
' \
      "$img" "$img" "$n"
    printf '  mount -o loop %q /run/v2vm/disk-%d &&
' "$img" "$n"
    printf '  { [ ! -d %q ] || cp -a %q/. /run/v2vm/disk-%d/; } &&
' "$d" "$d" "$n"
    printf '  mount --move /run/v2vm/disk-%d %q ||
' "$n" "$d"
    printf '  { echo "v2vm: cannot put a disk at %q" >&2; exit 125; }
' "$d"
    n=$((n + 1))
  done
  printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
  printf 'exec'
  printf ' %q' "$@"
  printf '\n'
} >"$initrd_root/v2vm/cmd.sh"
printf '%s\n' "${extra_tmpfs[@]}" >"$initrd_root/v2vm/tmpfs"
# The tree this script belongs to and the working directory stay visible even where they
# lie beneath a directory the guest covers with tmpfs (a clone in /tmp, say): bound
# aside before the tmpfs go on, moved back after.
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
{
  echo "$repo_root"
  case "$PWD/" in "$repo_root"/*) ;; *) echo "$PWD" ;; esac
} >"$initrd_root/v2vm/keep"

cat >"$initrd_root/init" <<EOF
#!/bin/busybox sh
# PID 1 of the pure cgroup v2 guest (generated by run-in-v2vm.sh).
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "v2vm-init: \$*"; echo "$kMarker 125"; poweroff -f; echo o >/proc/sysrq-trigger; sleep 5; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
# Pure v2, mounted as systemd does on a real node.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || fail "cgroup2 mount failed"
# systemd enables these at the root of a real node's tree; the command stays in the root
# cgroup ("0::/") and manages its own subtree below it.
echo "+cpuset +cpu +io +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control ||
  fail "cannot enable controllers at the cgroup2 root"
mount -t bpf -o mode=700 bpf /sys/fs/bpf 2>/dev/null
dmesg -n 1
for m in \$(cat /mods/order); do insmod /mods/\$m || fail "insmod \$m failed"; done
mount -t virtiofs -o ro hostroot /host || fail "virtiofs mount of the host root failed"
# Before the tmpfs go over /tmp, /var/tmp...: the kernel cache may be beneath one.
mkdir /modules
mount --bind /host$moddir /modules || fail "no modules at $moddir"
i=0
while read -r k; do
  mkdir -p /keep/\$i && mount --bind "/host\$k" /keep/\$i || fail "cannot keep \$k"
  i=\$((i + 1))
done </v2vm/keep
for d in /tmp /var/tmp /run /root \$(cat /v2vm/tmpfs); do
  mount -t tmpfs -o mode=1777 tmpfs /host\$d || fail "tmpfs on \$d failed"
done
i=0
while read -r k; do
  # Beneath a tmpfs the mount point is made afresh; elsewhere it exists already.
  [ -d "/host\$k" ] || mkdir -p "/host\$k" || fail "cannot recreate \$k"
  mount --move /keep/\$i "/host\$k" || fail "cannot put \$k back"
  i=\$((i + 1))
done </v2vm/keep
chmod 755 /host/run /host/root
mkdir -p /host/run/v2vm /host/run/lock
cp /bin/busybox /v2vm/cmd.sh /v2vm/stage2 /host/run/v2vm/
# Modules beyond the initramfs (overlay, loop, btrfs...) come from the unpacked package;
# the kernel runs modprobe when a mount or a socket needs one: busybox's, chrooted into
# a tree where the package's modules are /lib/modules (the host may have no such dir).
modroot=/host/run/v2vm/modroot
mkdir -p \$modroot/bin \$modroot/lib/modules/$kver
cp /bin/busybox \$modroot/bin/
mount --move /modules \$modroot/lib/modules/$kver || fail "cannot move the modules"
printf '#!/run/v2vm/busybox sh\nexec /run/v2vm/busybox chroot /run/v2vm/modroot /bin/busybox modprobe "\$@"\n' \
  >/host/run/v2vm/modprobe
chmod 755 /host/run/v2vm/modprobe
echo /run/v2vm/modprobe >/proc/sys/kernel/modprobe
mount --move /dev /host/dev
mount --move /proc /host/proc
mount --move /sys /host/sys
# The host's tree becomes the root of the guest's mount namespace, not a chroot: user
# namespaces (slivers) refuse to be created from a chroot.
exec switch_root /host /run/v2vm/busybox sh /run/v2vm/stage2
fail "switch_root failed"
EOF
chmod 755 "$initrd_root/init"

cat >"$initrd_root/v2vm/stage2" <<EOF
# PID 1 after switch_root, in the host's tree (generated by run-in-v2vm.sh).
bb=/run/v2vm/busybox
# Device nodes appear only once their module is in (a real node's systemd makes static
# nodes that load it on open): load loop now; the rest load on demand.
/run/v2vm/modprobe loop 2>/dev/null
\$bb ip link set lo up
kmsgs=\$(\$bb dmesg | \$bb wc -l)
echo "PLNG-V2VM-READY \$(\$bb cut -d' ' -f1 /proc/uptime)"
# Through a pipe, as under ctest on the host: no terminal, no colour codes.
set -o pipefail
/bin/bash /run/v2vm/cmd.sh </dev/null 2>&1 | \$bb cat
rc=\$?
echo "PLNG-V2VM-DONE \$(\$bb cut -d' ' -f1 /proc/uptime)"
if [ \$rc -ne 0 ]; then
  echo "v2vm-init: command failed (\$rc); kernel messages since it started:"
  \$bb dmesg | \$bb tail -n +\$((kmsgs + 1)) | \$bb tail -n 40
fi
echo "$kMarker \$rc"
\$bb sync
\$bb poweroff -f
echo o >/proc/sysrq-trigger
\$bb sleep 5
EOF
chmod 755 "$initrd_root/init"
(cd "$initrd_root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# --- virtiofsd: the host's root, served read-only in spirit (the guest mounts it ro) -
# Its default namespace sandbox fails on this host; chroot works (HOST-FACTS).
sock=$work/hostroot.sock
"$virtiofsd" --socket-path="$sock" -o source=/ -o sandbox=chroot -o cache="${PLNG_V2VM_CACHE_MODE:-always}" \
  -o log_level=warn >"$work/virtiofsd.log" 2>&1 &
virtiofsd_pid=$!
for _ in $(seq 1 100); do
  [ -S "$sock" ] && break
  kill -0 "$virtiofsd_pid" 2>/dev/null || break
  sleep 0.05
done
if [ ! -S "$sock" ]; then
  say "virtiofsd did not start:"
  cat "$work/virtiofsd.log" >&2
  exit "$kNoReport"
fi

prepared=$(date +%s.%N)

# --- the guest ------------------------------------------------------------------------
console=$work/console.log
say "kernel $kver, ${cpus} vCPUs (TCG), ${mem_mib} MiB, timeout ${timeout_s}s"
started=$(date +%s.%N)
"$qemu" -nodefaults -no-user-config -no-reboot \
  -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem_mib" \
  -object memory-backend-memfd,id=mem,size="${mem_mib}M",share=on -numa node,memdev=mem \
  -chardev socket,id=char0,path="$sock" \
  -device vhost-user-fs-pci,queue-size=1024,chardev=char0,tag=hostroot \
  -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 cgroup_no_v1=all quiet loglevel=3 panic=-1 rdinit=/init ${PLNG_V2VM_APPEND:-}" \
  -display none -monitor none \
  -chardev stdio,id=con,signal=off,logfile="$console",logappend=off -serial chardev:con \
  </dev/null &
qemu_pid=$!

timed_out=0
deadline=$(($(date +%s) + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    timed_out=1
    say "timeout after ${timeout_s}s: stopping the guest"
    kill -TERM "$qemu_pid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
ended=$(date +%s.%N)

# The console has CRLF line ends; the last marker at the start of a line counts.
rc=$(tr -d '\r' <"$console" | sed -n "s/^$kMarker \([0-9][0-9]*\)\$/\1/p" | tail -n 1)
ready=$(tr -d '\r' <"$console" | sed -n 's/^PLNG-V2VM-READY \([0-9.]*\)$/\1/p' | tail -n 1)
done_at=$(tr -d '\r' <"$console" | sed -n 's/^PLNG-V2VM-DONE \([0-9.]*\)$/\1/p' | tail -n 1)
awk -v p0="$script_started" -v p1="$prepared" -v s="$started" -v e="$ended" \
  -v r="${ready:-}" -v d="${done_at:-}" 'BEGIN {
  printf "run-in-v2vm: initramfs+virtiofsd %.1f s; qemu wall %.1f s", p1 - p0, e - s
  if (r != "") printf "; guest boot to command %.1f s", r
  if (r != "" && d != "") printf "; command %.1f s", d - r
  printf "\n" }' >&2

if [ "$timed_out" -eq 1 ]; then
  exit "$kTimedOut"
fi
if [ -z "$rc" ]; then
  say "the guest stopped without reporting an exit code; virtiofsd said:"
  cat "$work/virtiofsd.log" >&2
  exit "$kNoReport"
fi
exit "$rc"
