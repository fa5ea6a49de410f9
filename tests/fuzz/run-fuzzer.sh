#!/usr/bin/env bash
# Fuzzes one target for a bounded time: ctest fuzz_<name>_run (label fuzzrun) in
# a PLNG_FUZZ=ON build, CI and by hand (docs/fuzzing.md).
#   run-fuzzer.sh FUZZER REPLAY CORPUS WORKDIR SECONDS
# The environment's PLNG_FUZZ_SECONDS overrides SECONDS. Inputs libFuzzer finds
# go to WORKDIR/corpus (the committed corpus is only read, and the next run
# starts from both); a crash, leak, timeout or sanitizer report leaves its input
# in WORKDIR as crash-*, leak-*, timeout-* and fails the run.
set -euo pipefail
fuzzer=$1 replay=$2 corpus=$3 work=$4 seconds=${PLNG_FUZZ_SECONDS:-$5}
mkdir -p "$work/corpus" "$work/seeds"
"$replay" --write-seeds "$work/seeds"
args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -error_exitcode=1
  -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix="$work/")
dict="$(dirname "$corpus")/../$(basename "$corpus").dict"
if [ -f "$dict" ]; then args+=(-dict="$dict"); fi
exec "$fuzzer" "${args[@]}" "$work/corpus" "$corpus" "$work/seeds"
