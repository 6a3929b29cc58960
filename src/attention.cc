// The public entry: validate, plan, dispatch to a backend.
#include "rpa/attention.h"

#include "core/problem.h"
#include "cpu/cpu.h"
#include "plan/planner.h"
#include "reference/reference.h"
#include "single_loop/single_loop.h"

namespace rpa {

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::kAuto: return "auto";
    case Backend::kReference: return "reference";
    case Backend::kSingleLoop: return "single-loop";
    case Backend::kCpu: return "cpu";
    case Backend::kCuda: return "cuda";
  }
  return "unknown";
}

bool parse_backend(std::string_view name, Backend* out) {
  for (Backend b : {Backend::kAuto, Backend::kReference, Backend::kSingleLoop, Backend::kCpu,
                    Backend::kCuda}) {
    if (backend_name(b) == name) {
      *out = b;
      return true;
    }
  }
  return false;
}

Status attention(const AttentionInputs& inputs, const AttentionOptions& options,
                 const AttentionOutputs& outputs, const RunConfig& config) {
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, &outputs, &problem));
  if (config.validate) RPA_RETURN_IF_ERROR(check_metadata(problem));

  Backend backend = config.backend == Backend::kAuto ? Backend::kCpu : config.backend;
  if (backend == Backend::kReference) return run_reference(problem, inputs, outputs);
  if (backend == Backend::kCuda) {
    return Status::Unsupported("backend 'cuda' is not built into this copy of rpa");
  }
  Plan plan;
  RPA_RETURN_IF_ERROR(build_plan(problem, PlanConfig{}, &plan));
  if (backend == Backend::kSingleLoop) return run_single_loop(problem, plan, inputs, outputs);
  return run_cpu(problem, plan, inputs, outputs, config.threads);
}

Status make_plan(const AttentionInputs& inputs, const AttentionOptions& options, Plan* plan,
                 const PlanConfig& config) {
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, nullptr, &problem));
  RPA_RETURN_IF_ERROR(check_metadata(problem));
  return build_plan(problem, config, plan);
}

}  // namespace rpa
