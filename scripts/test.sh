#!/usr/bin/env bash
# The whole test suite: the optimized build and the ASan+UBSan build, each
# configured, built and run through ctest (C++, C and install tests), then
# the Python package, pip-installed, and its pytest suite
# (python/test-package.sh), then the concurrency tests under ThreadSanitizer
# and the fuzz targets (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Machines come from a pool (AVX2-only and AVX-512 CPUs, some with AMX):
# the log starts with the one this run had.
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "   ISA: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
  grep -x -E 'avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_bf16|avx512_fp16|amx_bf16|amx_tile' |
  tr '\n' ' ')"
scripts/install-deps.sh
jobs=$(nproc)
for preset in release asan; do
  echo "== $preset"
  cmake --preset "$preset"
  cmake --build --preset "$preset" -j "$jobs"
  # Which SIMD paths the tests below run on this machine (Highway targets,
  # AVX512_BF16 and AMX kernels).
  if [[ $preset == release ]]; then echo "== kernels: $(build/rpa machine)"; fi
  ctest --preset "$preset" -j "$jobs"
done
echo "== python"
python/test-package.sh build/rpa
# Concurrent calls under ThreadSanitizer, and every fuzz target for a bounded
# time (docs/robustness.md).
echo "== tsan"
cmake --preset tsan
cmake --build --preset tsan -j "$jobs"
ctest --preset tsan
echo "== fuzz"
scripts/fuzz.sh
