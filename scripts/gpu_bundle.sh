#!/usr/bin/env bash
# Packs what a GPU session runs into .gpu-bundle/ (git-ignored), for the
# device tool's `carry`: the GPU machine may lack the build's libraries
# (Highway, OpenBLAS, ...), so the binaries built here travel with the shared
# libraries they load from outside the CUDA toolkit and libc.
#   scripts/gpu_bundle.sh [BUILD_DIR]    (default: build, a Release build
#                                         with the cuda backend)
# then, on the GPU machine: scripts/gpu_session.sh (docs/cuda.md).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bundle=.gpu-bundle
for target in "$build/rpa" "$build/tests/rpa_tests"; do
  [[ -x $target ]] || { echo "gpu_bundle: $target is missing; build it first" >&2; exit 1; }
done
if [[ -z $(find "$build" -name 'launch.cu.o' -print -quit) ]]; then
  echo "gpu_bundle: $build was configured without the cuda backend" >&2
  exit 1
fi
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
cp "$build/rpa" "$build/tests/rpa_tests" "$bundle/bin/"
# Libraries resolved outside the CUDA toolkit, except the C runtime, which
# the GPU machine has.
ldd "$build/rpa" "$build/tests/rpa_tests" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  grep -v -e '/cuda' -e '/libc\.so' -e '/libm\.so' -e '/libpthread' -e '/libdl\.so' -e '/librt\.so' \
          -e '/libstdc++' -e '/libgcc_s' |
  while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
du -sh "$bundle"
ls "$bundle/lib"
