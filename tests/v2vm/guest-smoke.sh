#!/bin/sh
# Runs inside the v2vm guest (run-in-v2vm.sh): asserts the guest is the pure cgroup v2
# machine the driver tests rely on. Every check can fail; the first failure stops it.
set -eu

fail() {
  echo "v2vm smoke: FAIL: $*" >&2
  exit 1
}
ok() { echo "v2vm smoke: ok: $*"; }

# Only the unified hierarchy: /proc/self/cgroup has the one "0::" line.
self=$(cat /proc/self/cgroup)
[ "$self" = "0::/" ] || fail "/proc/self/cgroup is '$self', want '0::/'"
ok "/proc/self/cgroup is 0::/"

# No v1 hierarchy is mounted, and cgroup2 is mounted at /sys/fs/cgroup.
if awk '$3 == "cgroup" { found = 1 } END { exit !found }' /proc/mounts; then
  fail "a cgroup v1 hierarchy is mounted: $(awk '$3 == "cgroup"' /proc/mounts)"
fi
awk '$2 == "/sys/fs/cgroup" && $3 == "cgroup2" { found = 1 } END { exit !found }' /proc/mounts ||
  fail "cgroup2 is not mounted at /sys/fs/cgroup"
ok "cgroup2 at /sys/fs/cgroup, no v1 mounts"

# cgroup_no_v1=all: no controller is bound to a v1 hierarchy, and none can be.
awk 'NR > 1 && $2 != 0 { bad = 1 } END { exit bad }' /proc/cgroups ||
  fail "a controller sits on a v1 hierarchy: $(cat /proc/cgroups)"
probe=$(mktemp -d)
trap 'umount "$probe" 2>/dev/null || true; rmdir "$probe"' EXIT
if mount -t cgroup -o cpu,cpuacct cgroup "$probe" 2>/dev/null; then
  fail "mounting a v1 cpu hierarchy succeeded"
fi
ok "v1 controllers disabled (cgroup_no_v1=all)"

# The controllers the v2 driver writes are available and delegated from the root.
controllers=" $(cat /sys/fs/cgroup/cgroup.controllers) "
subtree=" $(cat /sys/fs/cgroup/cgroup.subtree_control) "
for c in cpu memory pids io; do
  case "$controllers" in *" $c "*) ;; *) fail "cgroup.controllers lacks $c:$controllers" ;; esac
  case "$subtree" in *" $c "*) ;; *) fail "root subtree_control lacks $c:$subtree" ;; esac
done
ok "cpu memory pids io available and enabled at the root"

# They work: a child cgroup with pids.max=1 refuses a second process.
cg=/sys/fs/cgroup/v2vm-smoke-$$
mkdir "$cg"
trap 'umount "$probe" 2>/dev/null || true; rmdir "$probe"; rmdir "$cg" 2>/dev/null || true' EXIT
[ -f "$cg/cpu.weight" ] && [ -f "$cg/memory.max" ] && [ -f "$cg/io.weight" ] ||
  fail "a child cgroup lacks cpu.weight, memory.max or io.weight: $(ls "$cg")"
echo 1 >"$cg/pids.max"
# (dash gives up when fork fails: the output, not the status, tells what happened.)
out=$(sh -c "echo \$\$ >$cg/cgroup.procs || { echo unmoved; exit; }; /bin/true && echo forked" \
  2>/dev/null || true)
[ "$out" != unmoved ] || fail "cannot move a shell into $cg"
[ "$out" != forked ] || fail "pids.max=1 let a second process start"
grep -qx 'max [1-9][0-9]*' "$cg/pids.events" || fail "pids.events counts no refusal: $(cat "$cg/pids.events")"
ok "pids.max enforced in a child cgroup"

# Modules outside the initramfs load on demand (overlayfs for sliver roots).
ov=$(mktemp -d)
mkdir "$ov/lower" "$ov/upper" "$ov/work" "$ov/merged"
echo hi >"$ov/lower/f"
mount -t overlay overlay -o "lowerdir=$ov/lower,upperdir=$ov/upper,workdir=$ov/work" "$ov/merged" ||
  fail "overlay mount failed (module autoload?)"
content=$(cat "$ov/merged/f")
umount "$ov/merged"
rm -rf "$ov"
[ "$content" = hi ] || fail "overlay shows '$content'"
ok "overlayfs loads on demand"
