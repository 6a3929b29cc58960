// The public entries: validate, plan, dispatch to a backend (one-shot), or
// plan once and run a plan per layer.
#include "rpa/attention.h"

#include <new>

#include "core/message.h"
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

namespace {

// O(1): the tensors of a run have the shapes the plan was made for.
Status check_plan_fits(const Plan& plan, const Problem& problem) {
  const struct {
    const char* what;
    int64_t planned, got;
  } sizes[] = {
      {"q.shape[0] (num_tokens)", plan.num_tokens, problem.num_tokens},
      {"q.shape[1] (num_kv_heads)", plan.num_kv_heads, problem.num_kv_heads},
      {"q.shape[2] (heads_per_kv)", plan.heads_per_kv, problem.heads_per_kv},
      {"q.shape[3] (head_dim)", plan.head_dim, problem.head_dim},
      {"k_cache.shape[0] (num_pages)", plan.num_pages, problem.num_pages},
      {"k_cache.shape[1] (page_size)", plan.page_size, problem.page_size},
      {"block_table.shape[0] (batch_capacity)", plan.batch_capacity, problem.batch_capacity},
  };
  for (const auto& s : sizes) {
    if (s.planned != s.got) {
      return Status::Invalid(cat(s.what, " = ", s.got, " but the plan was made for ", s.planned));
    }
  }
  return Status::Ok();
}

// Memory rpa sizes itself (the cpu workspace) fails as a status naming the
// bytes; a std::vector that cannot grow (the plan's lists, the reference's
// gathers) throws std::bad_alloc, which becomes a status here so that none
// escapes to the caller. Outputs are written only after every allocation.
template <typename Body>
Status catching_bad_alloc(const char* stage, const Body& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Status::Internal(cat("out of memory while ", stage, " (std::bad_alloc)"));
  }
}

}  // namespace

// The one orchestrator: placement, description, (validation, planning), run.
Status attention(const AttentionInputs& inputs, const AttentionOptions& options,
                 const AttentionOutputs& outputs, const RunConfig& config) {
  RunConfig resolved = config;
  resolved.backend = resolve_backend(config.backend, inputs);
  RPA_RETURN_IF_ERROR(check_placement(resolved.backend, inputs, outputs));
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, &outputs, &problem));
  if (config.validate) RPA_RETURN_IF_ERROR(check_metadata(problem));
  return catching_bad_alloc("planning and running the batch", [&] {
    Plan plan;
    if (resolved.backend != Backend::kReference) {
      RPA_RETURN_IF_ERROR(build_plan(problem, PlanConfig{}, &plan, resolved.backend));
    }
    return run_backend(resolved, problem, plan, inputs, outputs);
  });
}

Status make_plan(const AttentionInputs& inputs, const AttentionOptions& options, Plan* plan,
                 const PlanConfig& config, Backend backend) {
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, nullptr, &problem));
  RPA_RETURN_IF_ERROR(check_metadata(problem));
  return catching_bad_alloc("planning the batch", [&] {
    return build_plan(problem, config, plan, resolve_backend(backend, inputs));
  });
}

Status run(const Plan& plan, const AttentionInputs& inputs, const AttentionOutputs& outputs,
           const RunConfig& config) {
  RunConfig resolved = config;
  resolved.backend = config.backend == Backend::kAuto ? plan.backend : config.backend;
  RPA_RETURN_IF_ERROR(check_placement(resolved.backend, inputs, outputs));
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, plan.options, &outputs, &problem));
  RPA_RETURN_IF_ERROR(check_plan_fits(plan, problem));
  return catching_bad_alloc("running the plan",
                            [&] { return run_backend(resolved, problem, plan, inputs, outputs); });
}

}  // namespace rpa
