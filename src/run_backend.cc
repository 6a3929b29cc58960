#include "run_backend.h"

#include "core/ieee_denormals.h"
#include "cpu/cpu.h"
#ifdef RPA_WITH_CUDA
#include "cuda/cuda.h"
#endif
#include "reference/reference.h"
#include "single_loop/single_loop.h"

namespace rpa {

Backend resolve_backend(Backend requested, const AttentionInputs& inputs) {
  if (requested != Backend::kAuto) return requested;
#ifdef RPA_WITH_CUDA
  if (is_device_pointer(inputs.q.data)) return Backend::kCuda;
#else
  (void)inputs;
#endif
  return Backend::kCpu;
}

Status check_placement(Backend backend, const AttentionInputs& inputs,
                       const AttentionOutputs& outputs) {
#ifdef RPA_WITH_CUDA
  if (backend == Backend::kCuda) return check_cuda_placement(inputs, outputs);
  return check_host_placement(inputs, outputs, backend_name(backend));
#else
  (void)backend, (void)inputs, (void)outputs;
#endif
  return Status::Ok();
}

Status run_backend(const RunConfig& config, const Problem& problem, const Plan& plan,
                   const AttentionInputs& inputs, const AttentionOutputs& outputs) {
  // The host backends compute on this thread (the cpu backend's workers set
  // their own: cpu.cc).
  const ScopedIeeeDenormals ieee;
  switch (config.backend) {
    case Backend::kReference:
      return run_reference(problem, inputs, outputs);
    case Backend::kSingleLoop:
      return run_single_loop(problem, plan, inputs, outputs);
    case Backend::kCuda:
#ifdef RPA_WITH_CUDA
      return run_cuda(problem, plan, inputs, outputs, config.cuda_stream);
#else
      return Status::Unsupported(
          "backend 'cuda' is not built into this copy of rpa (no nvcc at build time)");
#endif
    default:
      return run_cpu(problem, plan, inputs, outputs, config.threads, config.workspace,
                     config.workspace_size);
  }
}

}  // namespace rpa
