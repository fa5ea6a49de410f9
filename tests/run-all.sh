#!/usr/bin/env bash
# Builds PlanetLab NG and runs every test (the README's test command).
# Run as root on Debian 12: it installs the packages it needs first.
#   BUILD_DIR   build directory (default: build)
#   PLNG_WERROR ON to treat warnings as errors (CI sets it)
#   FUZZ_BUILD_DIR  build directory of the clang/libFuzzer build (default: build-fuzz)
#   PLNG_FUZZ_SECONDS  how long each fuzz target runs (default 45; 0 skips fuzzing)
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
(cd "$build" && ctest --output-on-failure --timeout 900 -j2)

# Fuzzing (docs/fuzzing.md): a second build with clang, libFuzzer, ASan and UBSan;
# each target fuzzes for a bounded time from its corpus, and any crash, leak or
# sanitizer report fails the run. Only the fuzz targets and what they link are built.
fuzz_seconds=${PLNG_FUZZ_SECONDS:-45}
if [ "$fuzz_seconds" != 0 ]; then
  fuzz_build=${FUZZ_BUILD_DIR:-build-fuzz}
  CC=clang CXX=clang++ cmake -S . -B "$fuzz_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPLNG_FUZZ=ON -DPLNG_FUZZ_SECONDS="$fuzz_seconds"
  cmake --build "$fuzz_build" -j2 --target plng_fuzz
  (cd "$fuzz_build" && ctest --output-on-failure -L fuzzrun -j2)
fi
