#include "capi/convert.h"

#include "core/message.h"

namespace rpa::capi {

static_assert(RPA_F32 == static_cast<int>(DType::kF32) &&
                  RPA_BF16 == static_cast<int>(DType::kBF16) &&
                  RPA_F16 == static_cast<int>(DType::kF16) &&
                  RPA_I32 == static_cast<int>(DType::kI32) &&
                  RPA_FP8_E4M3 == static_cast<int>(DType::kF8E4M3),
              "rpa_dtype mirrors rpa::DType value for value");
static_assert(RPA_BACKEND_AUTO == static_cast<int>(Backend::kAuto) &&
                  RPA_BACKEND_REFERENCE == static_cast<int>(Backend::kReference) &&
                  RPA_BACKEND_SINGLE_LOOP == static_cast<int>(Backend::kSingleLoop) &&
                  RPA_BACKEND_CPU == static_cast<int>(Backend::kCpu) &&
                  RPA_BACKEND_CUDA == static_cast<int>(Backend::kCuda),
              "rpa_backend mirrors rpa::Backend value for value");
static_assert(RPA_MAX_RANK == kMaxRank, "rpa_tensor holds exactly a TensorView's rank");

Status to_view(const rpa_tensor& tensor, const char* name, TensorView* view) {
  if (tensor.dtype < RPA_F32 || tensor.dtype > RPA_FP8_E4M3) {
    return Status::Invalid(cat(name, ": dtype ", tensor.dtype, " is not an rpa_dtype"));
  }
  if (tensor.rank < 0 || tensor.rank > RPA_MAX_RANK) {
    return Status::Invalid(
        cat(name, ": rank ", tensor.rank, " is outside [0, ", RPA_MAX_RANK, "]"));
  }
  TensorView v;
  v.data = tensor.data;
  v.dtype = static_cast<DType>(tensor.dtype);
  v.rank = tensor.rank;
  bool all_zero = true;
  for (int d = 0; d < v.rank; ++d) {
    v.shape[d] = tensor.shape[d];
    v.strides[d] = tensor.strides[d];
    all_zero = all_zero && tensor.strides[d] == 0;
  }
  if (all_zero) {
    // Row-major. Overflowing extents are left for the C++ checks to report;
    // the wrapping product here is then never used.
    uint64_t stride = 1;
    for (int d = v.rank - 1; d >= 0; --d) {
      v.strides[d] = static_cast<int64_t>(stride);
      stride *= static_cast<uint64_t>(v.shape[d]);
    }
  }
  *view = v;
  return Status::Ok();
}

Status to_inputs(const rpa_attention_inputs& inputs, AttentionInputs* out) {
  RPA_RETURN_IF_ERROR(to_view(inputs.q, "q", &out->q));
  RPA_RETURN_IF_ERROR(to_view(inputs.k_cache, "k_cache", &out->k_cache));
  RPA_RETURN_IF_ERROR(to_view(inputs.v_cache, "v_cache", &out->v_cache));
  RPA_RETURN_IF_ERROR(to_view(inputs.block_table, "block_table", &out->block_table));
  RPA_RETURN_IF_ERROR(to_view(inputs.seq_lens, "seq_lens", &out->seq_lens));
  RPA_RETURN_IF_ERROR(to_view(inputs.query_start_len, "query_start_len", &out->query_start_len));
  RPA_RETURN_IF_ERROR(to_view(inputs.sinks, "sinks", &out->sinks));
  RPA_RETURN_IF_ERROR(to_view(inputs.k_scale, "k_scale", &out->k_scale));
  return to_view(inputs.v_scale, "v_scale", &out->v_scale);
}

Status to_outputs(const rpa_attention_outputs& outputs, AttentionOutputs* out) {
  RPA_RETURN_IF_ERROR(to_view(outputs.out, "out", &out->out));
  return to_view(outputs.lse, "lse", &out->lse);
}

Status to_options(const rpa_options* options, AttentionOptions* attention, RunConfig* config) {
  *attention = AttentionOptions{};
  *config = RunConfig{};
  if (options == nullptr) return Status::Ok();
  if (options->backend < RPA_BACKEND_AUTO || options->backend > RPA_BACKEND_CUDA) {
    return Status::Invalid(cat("options.backend = ", options->backend, " is not an rpa_backend"));
  }
  if (options->threads < 0) {
    return Status::Invalid(cat("options.threads = ", options->threads, " is negative"));
  }
  attention->scale = options->scale;
  attention->sliding_window = options->sliding_window;
  attention->logit_soft_cap = options->logit_soft_cap;
  config->backend = static_cast<Backend>(options->backend);
  config->threads = options->threads;
  config->validate = options->skip_validation == 0;
  config->cuda_stream = options->cuda_stream;
  return Status::Ok();
}

rpa_plan_stats to_c(const PlanStats& s) {
  return rpa_plan_stats{s.batch_capacity,
                        s.live_slots,
                        s.decode_rows,
                        s.prefill_rows,
                        s.items,
                        s.decode_items,
                        s.prefill_items,
                        s.chains,
                        s.partials,
                        s.live_pages,
                        s.visible_kv_tokens,
                        s.streamed_kv_tokens,
                        s.capacity_kv_tokens,
                        s.useful_ratio};
}

}  // namespace rpa::capi
