#!/usr/bin/env bash
# The GPU machine's work on the cuda backend, from the bundle that
# scripts/gpu_bundle.sh made and the device tool carried, in two device calls
# (one call may run 600 s at most):
#   bash scripts/gpu_session.sh check     the cuda tests, compute-sanitizer's
#                                         memcheck and racecheck, the Python module on torch
#                                         CUDA tensors, the XLA custom call on
#                                         JAX GPU arrays (about 9 min at most)
#   bash scripts/gpu_session.sh measure   rpa bench --backend cuda and the
#                                         comparison with torch SDPA (same)
#   bash scripts/gpu_session.sh sweep     the decode scenarios planned at
#                                         several split sizes, and Nsight
#                                         Compute's view of the decode kernel
#                                         (about 2 min)
# each with carry [".gpu-bundle"]. Every step's output goes to $OUT (the
# device tool's folder) and a one-line verdict per step to stdout, so a
# failing step never hides the ones after it.
set -uo pipefail
cd "$(dirname "$0")/.."
phase=${1:-}
if [[ $phase != check && $phase != measure && $phase != sweep ]]; then
  echo "usage: scripts/gpu_session.sh check|measure|sweep" >&2
  exit 2
fi
out=${OUT:-/tmp/rpa-gpu-session}
mkdir -p "$out"
bundle=$(mktemp -d)
if ! tar -xJf .gpu-bundle/bundle.tar.xz -C "$bundle"; then
  echo "no .gpu-bundle/bundle.tar.xz: run scripts/gpu_bundle.sh here and carry .gpu-bundle"
  exit 1
fi
export LD_LIBRARY_PATH=$bundle/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}

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
missing=$(ldd "$bundle/bin/rpa" "$bundle/bin/rpa_tests" | grep 'not found' | sort -u)
[[ -z $missing ]] || echo "libraries not found: $missing"

if [[ $phase == check ]]; then
  step tests 240 "$bundle/bin/rpa_tests" --gtest_filter='Cuda*:BenchCuda*'
  grep -E '^\[  (PASSED|FAILED)  \]|^\[  SKIPPED \] [0-9]+ tests?,|^\[  FAILED  \] [A-Za-z]' \
    "$out/tests.txt" | sort -u
  # compute-sanitizer refuses the device on some hosts ("Device not supported").
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  step memcheck 200 "$sanitizer" --tool memcheck --error-exitcode 9 \
    "$bundle/bin/rpa_tests" --gtest_filter='Cuda.MatchesReference*:Cuda.Fp8*'
  grep -m 3 -E 'ERROR SUMMARY|Invalid|not supported' "$out/memcheck.txt"
  # Shared-memory hazards of the cp.async rings and the warp-level barriers.
  step racecheck 200 "$sanitizer" --tool racecheck --error-exitcode 9 \
    "$bundle/bin/rpa_tests" --gtest_filter='Cuda.MatchesReferenceWithItsPlannerSizes:Cuda.DecodeOnlyWithLongContexts'
  grep -m 3 -E 'ERROR SUMMARY|RACECHECK SUMMARY|hazard|not supported' "$out/racecheck.txt"
  if compgen -G "$bundle/python/rpa/_rpa.cpython-*.so" >/dev/null; then
    step python 90 env PYTHONPATH="$bundle/python" python3 scripts/gpu_python_check.py
    cat "$out/python.txt"
  fi
  if compgen -G "$bundle/python/rpa/librpa_xla.so" >/dev/null; then
    step jax 120 env PYTHONPATH="$bundle/python" python3 scripts/gpu_jax_check.py
    cat "$out/jax.txt"
  fi
elif [[ $phase == sweep ]]; then
  # One item per split, as the cuda planner makes them (heuristics.h).
  for split in ${RPA_SPLITS:-256 512 1024 2048}; do
    step "split-$split" 120 "$bundle/bin/rpa" bench --backend cuda decode-long decode-capacity \
      --repeat 3 --split "$split" --kv-chunk "$split"
    grep -E '^decode' "$out/split-$split.txt"
  done
  for scenario in decode-long decode-capacity; do
    step "ncu-$scenario" 120 ncu --clock-control none -k regex:'decode_kernel|merge_kernel' --launch-count 1 \
      --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size,launch__occupancy_limit_registers \
      "$bundle/bin/rpa" bench --backend cuda "$scenario" --repeat 1 --budget 0.1
    grep -E 'decode_kernel|gpu__time|dram__|registers|warps_active|grid_size' "$out/ncu-$scenario.txt"
  done
else
  step bench 360 "$bundle/bin/rpa" bench --backend cuda --json-file "$out/rpa_cuda.json"
  cat "$out/bench.txt"
  if [[ -s $out/rpa_cuda.json ]]; then
    step torch 180 python3 scripts/compare_torch_sdpa.py --from-json "$out/rpa_cuda.json"
    cat "$out/torch.txt"
  fi
fi
