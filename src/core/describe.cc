// describe(): the O(1) half of the contract checks (docs/contract.md §3). It reads views,
// dtypes and options, never a metadata value (only the fp8 scales, one per kv
// head at most), and turns a valid call into the Problem that planners and
// backends read.
//
// A dtype or size missing from the support table (core/support.h) is
// kUnsupported: the call may be meaningful, but no kernel runs it. Every other
// failure breaks the contract and is kInvalidArgument.
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "core/kv_scales.h"
#include "core/message.h"
#include "core/problem.h"
#include "core/support.h"
#include "core/view_check.h"

namespace rpa {
namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

constexpr std::array<std::string_view, 4> kQDims = {"num_tokens", "num_kv_heads", "heads_per_kv",
                                                    "head_dim"};
constexpr std::array<std::string_view, 4> kCacheDims = {"num_pages", "page_size", "num_kv_heads",
                                                        "head_dim"};
// The sources of extents, spelled out: a check that passes builds no string.
constexpr std::array<std::string_view, 4> kQShapeTexts = {"q.shape[0]", "q.shape[1]", "q.shape[2]",
                                                          "q.shape[3]"};
constexpr std::array<std::string_view, 4> kCacheShapeTexts = {
    "k_cache.shape[0]", "k_cache.shape[1]", "k_cache.shape[2]", "k_cache.shape[3]"};

constexpr ViewRule kQRule = {"q", 4, "[num_tokens, num_kv_heads, heads_per_kv, head_dim]"};
constexpr ViewRule kKRule = {"k_cache", 4, "[num_pages, page_size, num_kv_heads, head_dim]"};
constexpr ViewRule kVRule = {"v_cache", 4, "[num_pages, page_size, num_kv_heads, head_dim]"};
constexpr ViewRule kBlockTableRule = {"block_table", 2, "[batch_capacity, max_pages_per_seq]"};
constexpr ViewRule kSeqLensRule = {"seq_lens", 1, "[batch_capacity]"};
constexpr ViewRule kQueryStartRule = {"query_start_len", 1, "[batch_capacity + 1]"};
constexpr ViewRule kSinksRule = {"sinks", 1, "[num_kv_heads * heads_per_kv]"};
constexpr ViewRule kOutRule = {"out", 4, "[num_tokens, num_kv_heads, heads_per_kv, head_dim]"};
constexpr ViewRule kLseRule = {"lse", 3, "[num_tokens, num_kv_heads, heads_per_kv]"};

struct NamedSpan {
  std::string_view name;
  ByteSpan span;
};

// Every input's span, for the aliasing checks of the outputs; an absent input
// keeps an empty span, which overlaps nothing.
using InputSpans = std::array<NamedSpan, 9>;

// "64, 80, 96, 128, 256": a support table as the unsupported errors list it.
template <typename T, std::size_t N>
std::string join(const std::array<T, N>& values) {
  std::string text;
  for (const T& v : values) text += (text.empty() ? "" : ", ") + cat(v);
  return text;
}

Status expect_dtype(const TensorView& v, std::string_view name, DType expected,
                    std::string_view expected_text) {
  if (v.dtype == expected) return Status::Ok();
  return Status::Invalid(cat(name, ".dtype = ", v.dtype, " must be ", expected_text));
}

// `name.shape[d]` must equal `expected`, which `source` already fixed as `meaning`.
Status expect_extent(const TensorView& v, std::string_view name, int d, int64_t expected,
                     std::string_view source, std::string_view meaning) {
  if (v.shape[d] == expected) return Status::Ok();
  return Status::Invalid(cat(name, ".shape[", d, "] = ", v.shape[d], " must equal ", source, " = ",
                             expected, " (", meaning, ")"));
}

// The plan stores token rows, pages, slots, heads and key positions as int32.
Status expect_fits_int32(int64_t value, std::string_view what, std::string_view meaning) {
  if (value <= kInt32Max) return Status::Ok();
  return Status::Invalid(cat(what, " = ", value, " (", meaning, ") exceeds ", kInt32Max,
                             ", the largest int32 index the plan uses"));
}

Status check_inputs(const AttentionInputs& in, InputSpans* spans) {
  size_t next = 0;
  // Checks one input view and records its span.
  const auto check = [&](const TensorView& v, const ViewRule& rule) {
    NamedSpan& named = (*spans)[next++];
    named.name = rule.name;
    return check_view(v, rule, &named.span);
  };
  RPA_RETURN_IF_ERROR(check(in.q, kQRule));
  if (!contains(kSupportedDTypes, in.q.dtype)) {
    return Status::Unsupported(
        cat("q.dtype = ", in.q.dtype, " is not supported; supported: ", join(kSupportedDTypes)));
  }
  RPA_RETURN_IF_ERROR(check(in.k_cache, kKRule));
  const bool quantized = contains(kQuantizedKvDTypes, in.k_cache.dtype);
  // The texts of a failure are built only on failure: a steady-state call
  // allocates nothing (docs/robustness.md).
  if (!quantized && in.k_cache.dtype != in.q.dtype) {
    return expect_dtype(in.k_cache, "k_cache", in.q.dtype,
                        cat("q.dtype (", in.q.dtype, ") or ", DType::kF8E4M3));
  }
  RPA_RETURN_IF_ERROR(check(in.v_cache, kVRule));
  if (in.v_cache.dtype != in.k_cache.dtype) {
    return expect_dtype(in.v_cache, "v_cache", in.k_cache.dtype,
                        cat("k_cache.dtype (", in.k_cache.dtype, ")"));
  }
  RPA_RETURN_IF_ERROR(check(in.block_table, kBlockTableRule));
  RPA_RETURN_IF_ERROR(expect_dtype(in.block_table, "block_table", DType::kI32, "i32"));
  RPA_RETURN_IF_ERROR(check(in.seq_lens, kSeqLensRule));
  RPA_RETURN_IF_ERROR(expect_dtype(in.seq_lens, "seq_lens", DType::kI32, "i32"));
  RPA_RETURN_IF_ERROR(check(in.query_start_len, kQueryStartRule));
  RPA_RETURN_IF_ERROR(expect_dtype(in.query_start_len, "query_start_len", DType::kI32, "i32"));
  if (in.sinks.present()) {
    RPA_RETURN_IF_ERROR(check(in.sinks, kSinksRule));
    RPA_RETURN_IF_ERROR(expect_dtype(in.sinks, "sinks", DType::kF32, "f32"));
  }
  // A quantized cache is meaningless without its scales, and a scale next to
  // an unquantized cache would be silently ignored: both are errors.
  for (const auto& [scale, rule] :
       {std::pair{&in.k_scale, &kKScaleRule}, std::pair{&in.v_scale, &kVScaleRule}}) {
    if (!quantized) {
      if (scale->present()) {
        return Status::Invalid(cat(rule->name, " is given but k_cache.dtype = ", in.k_cache.dtype,
                                   ": scales belong to ", DType::kF8E4M3, " caches only"));
      }
      continue;
    }
    if (!scale->present()) {
      return Status::Invalid(cat(rule->name, " is missing: k_cache.dtype = ", in.k_cache.dtype,
                                 " needs f32 scales [1] or [num_kv_heads]"));
    }
    RPA_RETURN_IF_ERROR(check(*scale, *rule));
    RPA_RETURN_IF_ERROR(expect_dtype(*scale, rule->name, DType::kF32, "f32"));
  }
  return Status::Ok();
}

// Checks the extents of checked input views against each other and the tables.
Status check_geometry(const AttentionInputs& in) {
  const TensorView& q = in.q;
  const TensorView& k = in.k_cache;
  const TensorView& bt = in.block_table;
  if (!contains(kSupportedHeadDims, q.shape[3])) {
    return Status::Unsupported(cat("q.shape[3] = ", q.shape[3], " (head_dim) is not supported; ",
                                   "supported: ", join(kSupportedHeadDims)));
  }
  if (!contains(kSupportedPageSizes, k.shape[1])) {
    return Status::Unsupported(
        cat("k_cache.shape[1] = ", k.shape[1],
            " (page_size) is not supported; supported: ", join(kSupportedPageSizes)));
  }
  // No model has zero heads; rejecting them spares every backend a headless call.
  for (int d : {1, 2}) {
    if (q.shape[d] == 0) {
      return Status::Invalid(cat("q.shape[", d, "] = 0 (", kQDims[d], ") must be positive"));
    }
  }
  RPA_RETURN_IF_ERROR(expect_fits_int32(q.shape[0], "q.shape[0]", kQDims[0]));
  RPA_RETURN_IF_ERROR(
      expect_fits_int32(q.shape[1] * q.shape[2], "q.shape[1] * q.shape[2]", "query heads"));
  RPA_RETURN_IF_ERROR(expect_fits_int32(k.shape[0], "k_cache.shape[0]", kCacheDims[0]));
  RPA_RETURN_IF_ERROR(expect_fits_int32(bt.shape[0], "block_table.shape[0]", "batch_capacity"));
  int64_t max_keys = 0;
  if (__builtin_mul_overflow(bt.shape[1], k.shape[1], &max_keys) || max_keys > kInt32Max) {
    return Status::Invalid(cat("block_table.shape[1] = ", bt.shape[1],
                               " (max_pages_per_seq) * page_size ", k.shape[1], " exceeds ",
                               kInt32Max, ", the largest int32 key position the plan uses"));
  }

  RPA_RETURN_IF_ERROR(expect_extent(k, "k_cache", 2, q.shape[1], "q.shape[1]", kQDims[1]));
  RPA_RETURN_IF_ERROR(expect_extent(k, "k_cache", 3, q.shape[3], "q.shape[3]", kQDims[3]));
  for (int d = 0; d < 4; ++d) {
    RPA_RETURN_IF_ERROR(expect_extent(in.v_cache, "v_cache", d, k.shape[d],
                                      kCacheShapeTexts[d], kCacheDims[d]));
  }
  RPA_RETURN_IF_ERROR(expect_extent(in.seq_lens, "seq_lens", 0, bt.shape[0], "block_table.shape[0]",
                                    "batch_capacity"));
  RPA_RETURN_IF_ERROR(expect_extent(in.query_start_len, "query_start_len", 0, bt.shape[0] + 1,
                                    "block_table.shape[0] + 1", "batch_capacity + 1"));
  if (in.sinks.present()) {
    RPA_RETURN_IF_ERROR(expect_extent(in.sinks, "sinks", 0, q.shape[1] * q.shape[2],
                                      "q.shape[1] * q.shape[2]", "num_kv_heads * heads_per_kv"));
  }
  for (const auto& [scale, name] :
       {std::pair{&in.k_scale, "k_scale"}, std::pair{&in.v_scale, "v_scale"}}) {
    if (scale->present() && scale->shape[0] != 1 && scale->shape[0] != q.shape[1]) {
      return Status::Invalid(cat(name, ".shape[0] = ", scale->shape[0],
                                 " must be 1 (per tensor) or q.shape[1] = ", q.shape[1],
                                 " (num_kv_heads, per kv head)"));
    }
  }
  // Rows may be padded apart, but must not overlap: row s is read as one run.
  if (bt.shape[0] > 1 && bt.strides[0] < bt.shape[1]) {
    return Status::Invalid(cat("block_table.strides[0] = ", bt.strides[0],
                               " must be at least block_table.shape[1] = ", bt.shape[1],
                               " (max_pages_per_seq): rows of block_table would overlap"));
  }
  return Status::Ok();
}

Status check_options(const AttentionOptions& o) {
  if (!std::isfinite(o.scale)) {
    return Status::Invalid(
        cat("options.scale = ", o.scale, " must be finite (0 selects 1/sqrt(head_dim))"));
  }
  if (o.sliding_window < 0) {
    return Status::Invalid(
        cat("options.sliding_window = ", o.sliding_window, " must be >= 0 (0 = off)"));
  }
  if (!(o.logit_soft_cap >= 0.0f) || std::isinf(o.logit_soft_cap)) {
    return Status::Invalid(
        cat("options.logit_soft_cap = ", o.logit_soft_cap, " must be finite and >= 0 (0 = off)"));
  }
  return Status::Ok();
}

Status expect_no_alias(const NamedSpan& output, const NamedSpan& other) {
  if (!output.span.overlaps(other.span)) return Status::Ok();
  const auto address = [](uintptr_t a) { return reinterpret_cast<const void*>(a); };
  return Status::Invalid(cat(output.name, " overlaps ", other.name, ": ", output.name,
                             " spans bytes [", address(output.span.begin), ", ",
                             address(output.span.end), ") and ", other.name, " spans [",
                             address(other.span.begin), ", ", address(other.span.end),
                             "); outputs must not alias an input or each other"));
}

// Checks where a checked output view lies: its extents match q, its elements
// are distinct, and it overlaps no input and no `earlier` output.
Status check_placement(const TensorView& v, const ViewRule& rule, const TensorView& q,
                       const InputSpans& inputs, const NamedSpan& checked,
                       const NamedSpan* earlier) {
  for (int d = 0; d < rule.rank; ++d) {
    RPA_RETURN_IF_ERROR(
        expect_extent(v, rule.name, d, q.shape[d], kQShapeTexts[d], kQDims[d]));
  }
  RPA_RETURN_IF_ERROR(check_distinct_elements(v, rule.name));
  for (const NamedSpan& input : inputs) RPA_RETURN_IF_ERROR(expect_no_alias(checked, input));
  if (earlier != nullptr) RPA_RETURN_IF_ERROR(expect_no_alias(checked, *earlier));
  return Status::Ok();
}

Status check_outputs(const AttentionOutputs& outputs, const TensorView& q,
                     const InputSpans& inputs) {
  const TensorView& out = outputs.out;
  NamedSpan out_span = {"out", {}};
  RPA_RETURN_IF_ERROR(check_view(out, kOutRule, &out_span.span));
  if (out.dtype != q.dtype && out.dtype != DType::kF32) {
    return Status::Invalid(
        cat("out.dtype = ", out.dtype, " must be q.dtype (", q.dtype, ") or f32"));
  }
  RPA_RETURN_IF_ERROR(check_placement(out, kOutRule, q, inputs, out_span, nullptr));
  if (!outputs.lse.present()) return Status::Ok();
  NamedSpan lse_span = {"lse", {}};
  RPA_RETURN_IF_ERROR(check_view(outputs.lse, kLseRule, &lse_span.span));
  RPA_RETURN_IF_ERROR(expect_dtype(outputs.lse, "lse", DType::kF32, "f32"));
  return check_placement(outputs.lse, kLseRule, q, inputs, lse_span, &out_span);
}

// The scales change with every layer, so their values are checked on every
// call (kv_scales.h).
Status check_problem_scales(const Problem& p) {
  for (const auto& [scale, stride, name] : {std::tuple{p.k_scale, p.k_scale_stride, "k_scale"},
                                            std::tuple{p.v_scale, p.v_scale_stride, "v_scale"}}) {
    if (scale == nullptr) continue;
    RPA_RETURN_IF_ERROR(check_scale_values(scale, stride, stride == 0 ? 1 : p.num_kv_heads, name));
  }
  return Status::Ok();
}

}  // namespace

Status describe(const AttentionInputs& inputs, const AttentionOptions& options,
                const AttentionOutputs* outputs, Problem* problem) {
  InputSpans spans;
  RPA_RETURN_IF_ERROR(check_inputs(inputs, &spans));
  RPA_RETURN_IF_ERROR(check_geometry(inputs));
  RPA_RETURN_IF_ERROR(check_options(options));
  if (outputs != nullptr) RPA_RETURN_IF_ERROR(check_outputs(*outputs, inputs.q, spans));

  Problem& p = *problem;
  p = Problem{};
  p.num_tokens = inputs.q.shape[0];
  p.num_kv_heads = inputs.q.shape[1];
  p.heads_per_kv = inputs.q.shape[2];
  p.head_dim = inputs.q.shape[3];
  p.num_pages = inputs.k_cache.shape[0];
  p.page_size = inputs.k_cache.shape[1];
  p.batch_capacity = inputs.block_table.shape[0];
  p.max_pages_per_seq = inputs.block_table.shape[1];
  p.dtype = inputs.q.dtype;
  p.kv_dtype = inputs.k_cache.dtype;
  p.out_dtype = outputs != nullptr ? outputs->out.dtype : inputs.q.dtype;
  p.scale = options.scale != 0.0f
                ? options.scale
                : static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_dim)));
  p.sliding_window = options.sliding_window;
  p.logit_soft_cap = options.logit_soft_cap;
  p.block_table = inputs.block_table.as<const int32_t>();
  p.block_table_stride = inputs.block_table.strides[0];
  p.seq_lens = inputs.seq_lens.as<const int32_t>();
  p.query_start_len = inputs.query_start_len.as<const int32_t>();
  p.sinks = inputs.sinks.present() ? inputs.sinks.as<const float>() : nullptr;
  if (p.quantized_kv()) {
    p.k_scale = inputs.k_scale.as<const float>();
    p.v_scale = inputs.v_scale.as<const float>();
    p.k_scale_stride = inputs.k_scale.shape[0] == 1 ? 0 : inputs.k_scale.strides[0];
    p.v_scale_stride = inputs.v_scale.shape[0] == 1 ? 0 : inputs.v_scale.strides[0];
    // The scales change with every layer, like q and the caches, and are
    // checked with them: O(num_kv_heads), also when a plan is reused.
    RPA_RETURN_IF_ERROR(check_problem_scales(p));
  }
  return Status::Ok();
}

}  // namespace rpa
