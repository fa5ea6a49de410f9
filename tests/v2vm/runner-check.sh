#!/usr/bin/env bash
# Checks run-in-v2vm.sh itself, on the host: the guest command's exit code and output
# come back, a run that overstays its timeout is stopped with 124, and neither leaves a
# scratch directory, a virtiofsd or a qemu behind; --disk gives a writable copy that
# leaves the host's directory as it was.
set -uo pipefail
runner=$(dirname "$0")/run-in-v2vm.sh

fail() {
  echo "v2vm runner: FAIL: $*" >&2
  exit 1
}

# Runs here put their scratch directories (and so virtiofsd's socket and qemu's
# console log) under a directory of their own, apart from other runs on the machine.
scratch=$(mktemp -d /tmp/plng-v2vm-check.XXXXXX)
# The --disk seed lives in the current directory: the guest's /tmp is its own.
seed=$(mktemp -d "$PWD/v2vm-disk-check.XXXXXX")
echo from-host >"$seed/seed"
trap 'rm -rf "$scratch" "$seed"' EXIT
export PLNG_V2VM_TMPDIR=$scratch
leftovers() {
  ls -A "$scratch"
  pgrep -af "$scratch" || true
}

out=$("$runner" -- sh -c 'echo "guest says $(cat /proc/self/cgroup)"; exit 7' 2>/dev/null)
rc=$?
[ "$rc" -ne 77 ] || exit 77
[ "$rc" -eq 7 ] || fail "exit code $rc, want 7"
echo "$out" | tr -d '\r' | grep -qx 'guest says 0::/' || fail "guest output missing: $out"
[ -z "$(leftovers)" ] || fail "left behind after a run: $(leftovers)"
echo "v2vm runner: ok: exit code and output of the guest command"

"$runner" --timeout 3 -- sleep 600 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 124 ] || fail "a run past its timeout exited $rc, want 124"
[ -z "$(leftovers)" ] || fail "left behind after a timeout: $(leftovers)"
echo "v2vm runner: ok: timeout stops the guest and cleans up"

out=$("$runner" --disk "$seed" -- sh -c "cat $seed/seed && echo guest >$seed/new && cat $seed/new" 2>/dev/null)
rc=$?
[ "$rc" -eq 0 ] || fail "a run with --disk exited $rc"
[ "$(echo "$out" | tr -d '\r' | grep -cxE 'from-host|guest')" -eq 2 ] || fail "--disk: the guest saw $out"
[ "$(ls "$seed")" = seed ] || fail "--disk: the host's directory changed: $(ls "$seed")"
[ -z "$(leftovers)" ] || fail "left behind after a --disk run: $(leftovers)"
echo "v2vm runner: ok: --disk is a writable copy, the host's directory is untouched"
