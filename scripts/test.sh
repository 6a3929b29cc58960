#!/usr/bin/env bash
# The whole test suite: the optimized build and the ASan+UBSan build, each
# configured, built and run through ctest (C++, C and install tests), then
# the Python package, pip-installed, and its pytest suite
# (python/test-package.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
for preset in release asan; do
  echo "== $preset"
  cmake --preset "$preset"
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done
echo "== python"
python/test-package.sh build/rpa
