#include "run_backend.h"

#include "cpu/cpu.h"
#include "plan/planner.h"
#include "reference/reference.h"
#include "single_loop/single_loop.h"

namespace rpa {

Status run_backend(Backend backend, int threads, const Problem& problem, const Plan* plan,
                   const AttentionInputs& inputs, const AttentionOutputs& outputs) {
  if (backend == Backend::kAuto) backend = Backend::kCpu;
  if (backend == Backend::kReference) return run_reference(problem, inputs, outputs);
  if (backend == Backend::kCuda) {
    return Status::Unsupported("backend 'cuda' is not built into this copy of rpa");
  }
  Plan built;
  if (plan == nullptr) {
    RPA_RETURN_IF_ERROR(build_plan(problem, PlanConfig{}, &built));
    plan = &built;
  }
  if (backend == Backend::kSingleLoop) return run_single_loop(problem, *plan, inputs, outputs);
  return run_cpu(problem, *plan, inputs, outputs, threads);
}

}  // namespace rpa
