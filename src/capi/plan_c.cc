// rpa_plan: a Plan together with its own copy of the batch metadata, so one
// planning step serves every layer of a batch step (plan once, run many).
#include <memory>
#include <vector>

#include "capi/convert.h"
#include "capi/errors.h"
#include "core/message.h"
#include "rpa/plan.h"

struct rpa_plan {
  rpa::Plan plan;
  rpa::AttentionOptions options;
  rpa::RunConfig config;
  // q, k_cache and v_cache as planned: only shapes and dtypes are used, every
  // run must present the same ones.
  rpa::TensorView q, k_cache, v_cache;
  // Dense copies of the metadata the plan was made from.
  std::vector<int32_t> block_table, seq_lens, query_start_len;
  rpa::TensorView block_table_view, seq_lens_view, query_start_len_view;
};

namespace rpa::capi {
namespace {

// A dense copy of a checked 1-D or 2-D i32 view, and a view of the copy.
TensorView copy_metadata(const TensorView& view, std::vector<int32_t>* copy) {
  const int64_t rows = view.rank == 2 ? view.shape[0] : 1;
  const int64_t cols = view.shape[view.rank - 1];
  copy->resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t at =
          (view.rank == 2 ? r * view.strides[0] : 0) + c * view.strides[view.rank - 1];
      (*copy)[r * cols + c] = view.as<const int32_t>()[at];
    }
  }
  return view.rank == 2 ? TensorView::contiguous(copy->data(), DType::kI32, {rows, cols})
                        : TensorView::contiguous(copy->data(), DType::kI32, {cols});
}

std::string shape_text(const TensorView& v) {
  std::string text = "[";
  for (int d = 0; d < v.rank; ++d) text += cat(d ? ", " : "", v.shape[d]);
  return cat(text, "] ", v.dtype);
}

Status check_same_geometry(const TensorView& got, const TensorView& planned, const char* name) {
  bool same = got.rank == planned.rank && got.dtype == planned.dtype;
  for (int d = 0; same && d < got.rank; ++d) same = got.shape[d] == planned.shape[d];
  if (same) return Status::Ok();
  return Status::Invalid(
      cat(name, " is ", shape_text(got), " but the plan was made for ", shape_text(planned)));
}

Status create(const rpa_attention_inputs& c_inputs, const rpa_options* c_options, rpa_plan* plan) {
  AttentionInputs inputs;
  RPA_RETURN_IF_ERROR(to_inputs(c_inputs, &inputs));
  RPA_RETURN_IF_ERROR(to_options(c_options, &plan->options, &plan->config));
  // Planned with the sizes of the backend it will run on (cuda's for device tensors).
  RPA_RETURN_IF_ERROR(make_plan(inputs, plan->options, &plan->plan, {}, plan->config.backend));
  plan->q = inputs.q;
  plan->k_cache = inputs.k_cache;
  plan->v_cache = inputs.v_cache;
  plan->block_table_view = copy_metadata(inputs.block_table, &plan->block_table);
  plan->seq_lens_view = copy_metadata(inputs.seq_lens, &plan->seq_lens);
  plan->query_start_len_view = copy_metadata(inputs.query_start_len, &plan->query_start_len);
  return Status::Ok();
}

Status run(const rpa_plan& plan, const rpa_layer_inputs& c_inputs,
           const rpa_attention_outputs& c_outputs, void* workspace = nullptr,
           int64_t workspace_size = 0) {
  AttentionInputs inputs;
  AttentionOutputs outputs;
  RPA_RETURN_IF_ERROR(to_view(c_inputs.q, "q", &inputs.q));
  RPA_RETURN_IF_ERROR(to_view(c_inputs.k_cache, "k_cache", &inputs.k_cache));
  RPA_RETURN_IF_ERROR(to_view(c_inputs.v_cache, "v_cache", &inputs.v_cache));
  RPA_RETURN_IF_ERROR(to_view(c_inputs.sinks, "sinks", &inputs.sinks));
  RPA_RETURN_IF_ERROR(to_view(c_inputs.k_scale, "k_scale", &inputs.k_scale));
  RPA_RETURN_IF_ERROR(to_view(c_inputs.v_scale, "v_scale", &inputs.v_scale));
  RPA_RETURN_IF_ERROR(to_outputs(c_outputs, &outputs));
  RPA_RETURN_IF_ERROR(check_same_geometry(inputs.q, plan.q, "q"));
  RPA_RETURN_IF_ERROR(check_same_geometry(inputs.k_cache, plan.k_cache, "k_cache"));
  RPA_RETURN_IF_ERROR(check_same_geometry(inputs.v_cache, plan.v_cache, "v_cache"));
  inputs.block_table = plan.block_table_view;
  inputs.seq_lens = plan.seq_lens_view;
  inputs.query_start_len = plan.query_start_len_view;

  // The metadata was checked when the plan was made and cannot have changed
  // since: only the O(1) checks of this layer's tensors and outputs run here.
  RunConfig config = plan.config;
  config.workspace = workspace;
  config.workspace_size = workspace_size;
  return rpa::run(plan.plan, inputs, outputs, config);
}

}  // namespace
}  // namespace rpa::capi

using rpa::capi::guarded;

extern "C" {

rpa_status rpa_plan_create(const rpa_attention_inputs* inputs, const rpa_options* options,
                           rpa_plan** plan) {
  return guarded([&] {
    if (inputs == nullptr || plan == nullptr) {
      return rpa::Status::Invalid("rpa_plan_create: inputs and plan must not be NULL");
    }
    *plan = nullptr;
    auto created = std::make_unique<rpa_plan>();
    RPA_RETURN_IF_ERROR(rpa::capi::create(*inputs, options, created.get()));
    *plan = created.release();
    return rpa::Status::Ok();
  });
}

rpa_status rpa_plan_run(const rpa_plan* plan, const rpa_layer_inputs* inputs,
                        const rpa_attention_outputs* outputs) {
  return guarded([&] {
    if (plan == nullptr || inputs == nullptr || outputs == nullptr) {
      return rpa::Status::Invalid("rpa_plan_run: plan, inputs and outputs must not be NULL");
    }
    return rpa::capi::run(*plan, *inputs, *outputs);
  });
}

rpa_status rpa_plan_get_stats(const rpa_plan* plan, rpa_plan_stats* stats) {
  return guarded([&] {
    if (plan == nullptr || stats == nullptr) {
      return rpa::Status::Invalid("rpa_plan_get_stats: plan and stats must not be NULL");
    }
    *stats = rpa::capi::to_c(plan->plan.stats);
    return rpa::Status::Ok();
  });
}

rpa_status rpa_plan_workspace_bytes(const rpa_plan* plan, int64_t* bytes) {
  return guarded([&] {
    if (plan == nullptr || bytes == nullptr) {
      return rpa::Status::Invalid("rpa_plan_workspace_bytes: plan and bytes must not be NULL");
    }
    *bytes = rpa::workspace_bytes(plan->plan, plan->config);
    return rpa::Status::Ok();
  });
}

rpa_status rpa_plan_run_with_workspace(const rpa_plan* plan, const rpa_layer_inputs* inputs,
                                       const rpa_attention_outputs* outputs, void* workspace,
                                       int64_t workspace_size) {
  return guarded([&] {
    if (plan == nullptr || inputs == nullptr || outputs == nullptr) {
      return rpa::Status::Invalid(
          "rpa_plan_run_with_workspace: plan, inputs and outputs must not be NULL");
    }
    if (workspace_size < 0 || (workspace == nullptr && workspace_size > 0)) {
      return rpa::Status::Invalid(rpa::cat("rpa_plan_run_with_workspace: workspace = ",
                                           workspace == nullptr ? "NULL" : "set", ", workspace_size = ",
                                           workspace_size, ": pass a buffer of rpa_plan_workspace_bytes"));
    }
    // NULL with size 0 (a plan that needs none) stays a caller's workspace,
    // so a plan that does need one is refused rather than allocated for.
    static char none;
    return rpa::capi::run(*plan, *inputs, *outputs, workspace != nullptr ? workspace : &none,
                          workspace_size);
  });
}

void rpa_plan_destroy(rpa_plan* plan) { delete plan; }

}  // extern "C"
