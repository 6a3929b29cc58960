#!/usr/bin/env bash
# Builds the optimized CLI at build/rpa and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)" --target rpa_cli
build/rpa demo "$@"
