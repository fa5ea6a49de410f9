#!/usr/bin/env bash
# Installs every Debian 12 package PlanetLab NG needs to build, test and run its
# local planet. Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  python3  # cmake/check_module_includes.py (ctest -L build)
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libgrpc-dev
  libpqxx-dev libpq-dev libspdlog-dev libfmt-dev libssl-dev libboost-dev libboost-system-dev
  catch2
  # fuzzing (tests/fuzz, docs/fuzzing.md): clang with its libFuzzer and sanitizer runtimes
  clang libclang-rt-14-dev
  postgresql postgresql-client
  openssh-client procps iproute2
  # node: namespaces, cgroups, seccomp, capabilities, storage, images (busybox-static,
  # mmdebstrap for deploy/images), ssh login
  libseccomp-dev libcap-dev btrfs-progs busybox-static openssh-server util-linux
  mmdebstrap
  # the planet's network (deploy/planet-net.sh): its remote site's servers, and the
  # tools its tests and walk-through use from the nodes
  iperf3 traceroute iputils-ping curl
  # peers for bench/sliver_bench, and the pure cgroup v2 guest (tests/v2vm)
  runc crun qemu-system-x86 cpio
  # vnet-bpf: BPF objects (clang), their skeletons (bpftool), the loader (libbpf);
  # the vnet tests and bench/vnet_bench drive stock tools through it
  llvm libbpf-dev bpftool tcpdump
  # the node's flow auditing page, rendered in a headless browser by its test,
  # which reads the screenshot with libpng
  chromium libpng-dev
  # /metrics of plcd and sliverd (docs/metrics.md): its tests scrape them with a real
  # Prometheus server and check the text with promtool and the Python client's parser
  prometheus python3-prometheus-client
  # plcd's slice expiry reminders (docs/plc.md, "Expiry reminders"): their test mails
  # through aiosmtpd, an SMTP server on loopback (for /usr/bin/python3), over TLS with
  # a certificate made by the openssl command
  python3-aiosmtpd openssl
  # the web portal (web/): built with node and npm, tested in chromium (tests/portal)
  nodejs
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# npm: some nodejs packages (NodeSource's) carry npm themselves and conflict with
# Debian's npm package, so it is asked for only when no npm is on the PATH.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The postgresql package starts a cluster of its own; PlanetLab NG runs PostgreSQL in
# private data directories instead, so the system cluster is not needed.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_ctlcluster 15 main stop 2>/dev/null || true
fi
# Likewise the prometheus package's own server (a systemd unit, where systemd runs):
# the tests start private ones on free ports.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus 2>/dev/null || true
fi
