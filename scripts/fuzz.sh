#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan + UBSan) and
# runs each for a bounded time from its seed corpus in fuzz/corpus/<target>/
# (docs/robustness.md). New inputs go to a scratch folder, never into the
# committed corpus; a crash leaves its input in build-fuzz/artifacts/ and
# fails the script.
#   FUZZ_SECONDS  time per target (default 20)
#   FUZZ_TARGETS  which targets (default all: cases attention write_kv merge_states)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
targets=${FUZZ_TARGETS:-"cases attention write_kv merge_states"}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
mkdir -p build-fuzz/artifacts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:protect_shadow_gap=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The attention target runs the cpu backend with 1 or 2 threads of its own.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
for target in $targets; do
  scratch=$(mktemp -d)
  echo "== fuzz_$target (${seconds}s)"
  if ! build-fuzz/fuzz/fuzz_"$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/"$target"- \
      "$scratch" fuzz/corpus/"$target" >build-fuzz/fuzz_"$target".log 2>&1; then
    tail -n 60 build-fuzz/fuzz_"$target".log
    rm -rf "$scratch"
    echo "fuzz_$target failed: the input is in build-fuzz/artifacts/" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" build-fuzz/fuzz_"$target".log | tr '\n' ' '
  echo
  rm -rf "$scratch"
done
