#!/usr/bin/env bash
# The Python package as a user gets it, then its tests:
#   python/test-package.sh [RPA_CLI]
# Builds the wheel once for the python3 on PATH (pip wheel: the same PEP 517
# build as `pip install .`, in pip's isolated build environment), installs
# it into two fresh virtual environments under build-python/ and runs
# python/tests in each:
#   venv-numpy1  NumPy 1.x, no JAX: everything but the JAX tests (they skip);
#   venv         NumPy 2 with jax and jaxlib ([test] extra): every test.
# RPA_CLI (default build/rpa, the release build's CLI) runs the tests that go
# through the CLI; they skip when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=$(realpath -m "${1:-build/rpa}")
out=build-python
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

rm -rf "$out/wheelhouse" "$out/venv" "$out/venv-numpy1"
python3 -m venv "$out/venv"
"$out/venv/bin/python" -m pip wheel --no-deps --wheel-dir "$out/wheelhouse" .
wheel=$(ls "$out"/wheelhouse/rpa_attention-*.whl)

if [[ -x $cli ]]; then
  export RPA_CLI=$cli
else
  echo "test-package: $cli is missing: the CLI tests skip"
fi

echo "== python: NumPy 1.x, without JAX"
python3 -m venv "$out/venv-numpy1"
"$out/venv-numpy1/bin/python" -m pip install --quiet "$wheel" "numpy<2" pytest
(cd "$out" && venv-numpy1/bin/python -c "import numpy, rpa; print('rpa', rpa.__version__, 'numpy', numpy.__version__)")
"$out/venv-numpy1/bin/python" -m pytest python/tests

echo "== python: NumPy 2, JAX"
"$out/venv/bin/python" -m pip install --quiet "$wheel[test]"
(cd "$out" && venv/bin/python -c "import numpy, jax, rpa; print('rpa', rpa.__version__, 'numpy', numpy.__version__, 'jax', jax.__version__)")
"$out/venv/bin/python" -m pytest python/tests
