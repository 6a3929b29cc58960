#!/usr/bin/env bash
# One call on the GPU machine that checks and measures the cuda backend,
# from the bundle that scripts/gpu_bundle.sh made and the device tool
# carried: the cuda tests, a compute-sanitizer memcheck, the Python module on
# torch CUDA tensors, `rpa bench --backend cuda` and the comparison with
# torch SDPA. Every step's output
# goes to $OUT (the device tool's folder) and a one-line verdict per step to
# stdout, so a failing step never hides the ones after it.
#   device run, carry [".gpu-bundle"]:  bash scripts/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/rpa-gpu-session}
mkdir -p "$out"
bundle=$(mktemp -d)
tar -xJf .gpu-bundle/bundle.tar.xz -C "$bundle" || { echo "no .gpu-bundle/bundle.tar.xz: run scripts/gpu_bundle.sh and carry .gpu-bundle"; exit 1; }
export LD_LIBRARY_PATH=$bundle/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

step() {  # step NAME SECONDS COMMAND...: runs it into $out/NAME.txt
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS
  timeout "$seconds" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc after $((SECONDS - start)) s; last line: $(tail -n 1 "$out/$name.txt")"
}

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv >"$out/gpu.txt" 2>&1
echo "gpu: $(tail -n 1 "$out/gpu.txt")"
step tests 240 "$bundle/bin/rpa_tests" --gtest_filter='Cuda*:BenchCuda*'
grep -E '^\[  (PASSED|FAILED)  \]|^\[  SKIPPED \] [0-9]+ tests?,|^\[  FAILED  \] [A-Za-z]' "$out/tests.txt" | sort -u
step memcheck 240 "$sanitizer" --tool memcheck --error-exitcode 9 \
  "$bundle/bin/rpa_tests" --gtest_filter='Cuda.MatchesReference*:Cuda.Fp8*'
grep -m 3 -E 'ERROR SUMMARY|Invalid' "$out/memcheck.txt"
if compgen -G "$bundle/python/rpa.cpython-*.so" >/dev/null; then
  step python 120 env PYTHONPATH="$bundle/python" python3 scripts/gpu_python_check.py
  cat "$out/python.txt"
fi
step bench 300 "$bundle/bin/rpa" bench --backend cuda --json-file "$out/rpa_cuda.json"
cat "$out/bench.txt"
if [[ -s $out/rpa_cuda.json ]]; then
  step torch 240 python3 scripts/compare_torch_sdpa.py --from-json "$out/rpa_cuda.json"
  cat "$out/torch.txt"
fi
