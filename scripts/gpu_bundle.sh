#!/usr/bin/env bash
# Packs what a GPU session runs into .gpu-bundle/bundle.tar.xz (git-ignored),
# for the device tool's `carry` (64 MiB at most): the GPU machine may lack the
# build's libraries (Highway, OpenBLAS, ...), so the binaries and the Python
# module built here travel with the shared libraries they load from outside
# the CUDA toolkit and libc.
#   scripts/gpu_bundle.sh [BUILD_DIR]    (default: build, a Release build
#                                         with the cuda backend)
# The GPU machine's python3 is 3.12 (torch's): with GPU_PYTHON set to a
# CPython 3.12 here (e.g. pyenv's), the module and librpa_xla.so are built
# for it in build-gpu-python (pybind11, and jaxlib $GPU_JAXLIB for its XLA
# FFI headers, default the GPU machine's 0.11.2, are pip-installed into it).
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
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/python"
cp "$build/rpa" "$build/tests/rpa_tests" "$stage/bin/"
binaries=("$build/rpa" "$build/tests/rpa_tests")
if [[ -n ${GPU_PYTHON:-} ]]; then
  "$GPU_PYTHON" -m pybind11 --cmakedir >/dev/null 2>&1 || "$GPU_PYTHON" -m pip install -q pybind11
  # librpa_xla.so (the XLA custom call, scripts/gpu_jax_check.py) compiles
  # against jaxlib's XLA FFI headers, of the GPU machine's jax: a newer FFI
  # API is refused there at registration. 0.11.2 is the H200 image's.
  jaxlib_version=${GPU_JAXLIB:-0.11.2}
  if [[ $("$GPU_PYTHON" -c "import jaxlib; print(jaxlib.__version__)" 2>/dev/null) != "$jaxlib_version" ]]; then
    "$GPU_PYTHON" -m pip install -q "jaxlib==$jaxlib_version"
  fi
  ffi_include=$("$GPU_PYTHON" -c "import jaxlib, os; print(os.path.join(os.path.dirname(jaxlib.__file__), 'include'))")
  cmake -S . -B build-gpu-python -G Ninja -DCMAKE_BUILD_TYPE=Release -DRPA_BUILD_TESTS=OFF \
    -DRPA_BUILD_PYTHON=ON -DPython_EXECUTABLE="$GPU_PYTHON" -DRPA_XLA_FFI_INCLUDE_DIR="$ffi_include" \
    -Dpybind11_DIR="$("$GPU_PYTHON" -m pybind11 --cmakedir)" >/dev/null
  cmake --build build-gpu-python --target rpa_python_package
  build_python=build-gpu-python
else
  build_python=$build
fi
# The package directory (rpa/__init__.py, rpa/_rpa*.so, ...; docs/python.md).
if [[ -d $build_python/python/rpa ]]; then
  cp -r "$build_python/python/rpa" "$stage/python/"
  for module in "$build_python"/python/rpa/*.so; do binaries+=("$module"); done
fi
# Libraries resolved outside the CUDA toolkit, except the C runtime, which
# the GPU machine has.
ldd "${binaries[@]}" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  grep -v -e '/cuda' -e '/libc\.so' -e '/libm\.so' -e '/libpthread' -e '/libdl\.so' -e '/librt\.so' \
          -e '/libstdc++' -e '/libgcc_s' -e '/libpython' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
rm -rf "$bundle"
mkdir -p "$bundle"
tar -cJf "$bundle/bundle.tar.xz" -C "$stage" bin lib python
ls -la "$bundle/bundle.tar.xz"
tar -tJf "$bundle/bundle.tar.xz" | grep -v '/$'
