#!/usr/bin/env bash
# Builds PlanetLab NG and runs every test (the README's test command).
# Run as root on Debian 12: it installs the packages it needs first.
#   BUILD_DIR   build directory (default: build)
#   PLNG_WERROR ON to treat warnings as errors (CI sets it)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}

if [ "$(id -u)" -eq 0 ]; then
  bash deploy/install-deps.sh
else
  echo "run-all.sh: not root, skipping package installation" >&2
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPLNG_WERROR="${PLNG_WERROR:-OFF}"
cmake --build "$build" -j2
cd "$build"
ctest --output-on-failure --timeout 900 -j2
