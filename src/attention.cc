// The public entry: validate, plan, dispatch to a backend.
#include "rpa/attention.h"

#include "core/problem.h"
#include "plan/planner.h"
#include "run_backend.h"

namespace rpa {

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::kAuto:
      return "auto";
    case Backend::kReference:
      return "reference";
    case Backend::kSingleLoop:
      return "single-loop";
    case Backend::kCpu:
      return "cpu";
    case Backend::kCuda:
      return "cuda";
  }
  return "unknown";
}

bool parse_backend(std::string_view name, Backend* out) {
  for (Backend b :
       {Backend::kAuto, Backend::kReference, Backend::kSingleLoop, Backend::kCpu, Backend::kCuda}) {
    if (backend_name(b) == name) {
      *out = b;
      return true;
    }
  }
  return false;
}

Status attention(const AttentionInputs& inputs, const AttentionOptions& options,
                 const AttentionOutputs& outputs, const RunConfig& config) {
  RunConfig resolved = config;
  resolved.backend = resolve_backend(config.backend, inputs);
  RPA_RETURN_IF_ERROR(check_placement(resolved.backend, inputs, outputs));
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, &outputs, &problem));
  if (config.validate) RPA_RETURN_IF_ERROR(check_metadata(problem));

  return run_backend(resolved, problem, nullptr, inputs, outputs);
}

Status make_plan(const AttentionInputs& inputs, const AttentionOptions& options, Plan* plan,
                 const PlanConfig& config) {
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, nullptr, &problem));
  RPA_RETURN_IF_ERROR(check_metadata(problem));
  return build_plan(problem, config, plan);
}

}  // namespace rpa
