#!/usr/bin/env bash
# Builds a reference image (a sliver's read-only lower layer) into a directory.
#
#   build-image.sh busybox  <dir>   a tiny root from busybox-static (for tests)
#   build-image.sh debian12 <dir>   Debian 12 minbase (mmdebstrap, else debootstrap)
#
# Cached: when <dir>/.plng-image already names the same kind and version, nothing
# is rebuilt. The image is built beside <dir> and renamed into place, so a
# half-built image is never used. Files are owned by host root (uid 0..65535):
# slivers see them through an idmapped mount shifted onto the slice's range.
# See README.md in this folder.
set -euo pipefail

# Bump when what an image contains changes, so cached images are rebuilt.
readonly BUSYBOX_VERSION=2
readonly DEBIAN12_VERSION=2

usage() {
  echo "usage: $0 busybox|debian12 <dir>" >&2
  exit 2
}
[ $# -eq 2 ] || usage
kind=$1
dir=$2
case "$kind" in
  busybox) version=$BUSYBOX_VERSION ;;
  debian12) version=$DEBIAN12_VERSION ;;
  *) usage ;;
esac
stamp="$kind $version"

if [ -f "$dir/.plng-image" ] && [ "$(cat "$dir/.plng-image")" = "$stamp" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build-image.sh: run as root (image files must belong to root)" >&2
  exit 1
fi

mkdir -p "$(dirname "$dir")"
parent=$(cd "$(dirname "$dir")" && pwd)
work=$(mktemp -d "$parent/.$(basename "$dir").build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir "$root"

# Directories every sliver needs (mount points, /etc/plng for the initscript).
base_dirs() {
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/plng,root,tmp,proc,sys,dev,var/tmp,run,home}
  chmod 0700 "$root/root"
  chmod 1777 "$root/tmp" "$root/var/tmp"
}

build_busybox() {
  local busybox
  busybox=$(command -v busybox || true)
  if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    [ -x /bin/busybox ] && busybox=/bin/busybox
  fi
  if [ -z "$busybox" ] || ! "$busybox" --list-full >/dev/null 2>&1; then
    echo "build-image.sh: needs a static busybox (apt-get install busybox-static)" >&2
    exit 1
  fi
  base_dirs
  install -m 0755 "$busybox" "$root/bin/busybox"
  local applet
  while read -r applet; do
    [ -n "$applet" ] || continue
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done < <("$busybox" --list-full)
  # The build host's measurement tools, when it has them, with the libraries
  # they load: iperf3 (bandwidth experiments) and tcpdump (a slice's own
  # packets; docs/vnet.md). Stock Debian binaries, not busybox applets.
  local tool lib
  for tool in iperf3 tcpdump; do
    tool=$(command -v "$tool" || true)
    [ -n "$tool" ] || continue
    install -D -m 0755 "$tool" "$root/usr/bin/$(basename "$tool")"
    for lib in $(ldd "$tool" | grep -o '/[^ ]*'); do
      [ -e "$root$lib" ] || install -D -m 0755 "$lib" "$root$lib"
    done
  done
  # tcpdump gives up root for its own user once its socket is open.
  cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
tcpdump:x:104:104:tcpdump:/nonexistent:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
  cat >"$root/etc/group" <<'GROUP'
root:x:0:
tty:x:5:
tcpdump:x:104:
nogroup:x:65534:
GROUP
  echo "sliver" >"$root/etc/hostname"
  : >"$root/etc/resolv.conf"
  chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/hostname" "$root/etc/resolv.conf"
}

build_debian12() {
  if command -v mmdebstrap >/dev/null; then
    # mmdebstrap wants to create the target itself (or find it empty).
    rmdir "$root"
    mmdebstrap --variant=minbase --include=ca-certificates,procps,iproute2,iputils-ping,traceroute \
      bookworm "$root"
  elif command -v debootstrap >/dev/null; then
    debootstrap --variant=minbase --include=ca-certificates,procps,iproute2,iputils-ping,traceroute \
      bookworm "$root"
  else
    echo "build-image.sh: needs mmdebstrap or debootstrap (deploy/install-deps.sh)" >&2
    exit 1
  fi
  mkdir -p "$root/etc/plng"
  echo "sliver" >"$root/etc/hostname"
  # Nothing of the build host's apt state belongs in an image.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

"build_$kind"
echo "$stamp" >"$root/.plng-image"
chmod 0755 "$root"

if [ -e "$dir" ]; then
  old="$work/old"
  mv "$dir" "$old"
fi
mv "$root" "$dir"
