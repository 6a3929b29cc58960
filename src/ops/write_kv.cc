// write_kv: validate everything first (shapes, dtypes, scales, every slot,
// duplicates), then copy or quantize. Cost O(n log n) in the new tokens for
// the duplicate check.
#include "rpa/write_kv.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "core/kv_scales.h"
#include "core/message.h"
#include "core/support.h"
#include "core/view_check.h"

namespace rpa {
namespace {

Status check_shapes(const TensorView& k_new, const TensorView& v_new, const TensorView& slots,
                    const KvCache& cache) {
  const TensorView& kc = cache.k_cache;
  if (kc.rank != 4) {
    return Status::Invalid(cat("k_cache.rank = ", kc.rank,
                               " must be 4 ([num_pages, page_size, num_kv_heads, head_dim])"));
  }
  for (int d = 0; d < 4; ++d) {
    if (cache.v_cache.rank != 4 || cache.v_cache.shape[d] != kc.shape[d]) {
      return Status::Invalid(cat("v_cache.shape[", d, "] = ", cache.v_cache.shape[d],
                                 " must equal k_cache.shape[", d, "] = ", kc.shape[d]));
    }
  }
  if (slots.rank != 1 || slots.dtype != DType::kI32) {
    return Status::Invalid(
        cat("slot_mapping must be a rank-1 i32 tensor, got rank ", slots.rank, " ", slots.dtype));
  }
  for (auto [name, v] : {std::pair{"k_new", &k_new}, std::pair{"v_new", &v_new}}) {
    if (v->rank != 3) {
      return Status::Invalid(
          cat(name, ".rank = ", v->rank, " must be 3 ([num_new_tokens, num_kv_heads, head_dim])"));
    }
    if (v->shape[0] != slots.shape[0]) {
      return Status::Invalid(cat(name, ".shape[0] = ", v->shape[0],
                                 " must equal slot_mapping.shape[0] = ", slots.shape[0]));
    }
    for (int d = 1; d < 3; ++d) {
      if (v->shape[d] != kc.shape[d + 1]) {
        return Status::Invalid(cat(name, ".shape[", d, "] = ", v->shape[d],
                                   " must equal k_cache.shape[", d + 1, "] = ", kc.shape[d + 1]));
      }
    }
  }
  return Status::Ok();
}

// The tokens carry the caches' dtype and are copied, or are f32/bf16/f16 for
// fp8 caches and are quantized with the scales (*quantize). A scale that the
// write would ignore is an error, as in attention.
Status check_dtypes(const TensorView& k_new, const TensorView& v_new, const KvCache& cache,
                    bool* quantize) {
  const DType cache_dtype = cache.k_cache.dtype;
  const bool fp8_cache = contains(kQuantizedKvDTypes, cache_dtype);
  if (!contains(kSupportedDTypes, cache_dtype) && !fp8_cache) {
    return Status::Invalid(
        cat("k_cache.dtype = ", cache_dtype, " must be f32, bf16, f16 or fp8_e4m3"));
  }
  if (cache.v_cache.dtype != cache_dtype) {
    return Status::Invalid(
        cat("v_cache.dtype = ", cache.v_cache.dtype, " must equal k_cache.dtype = ", cache_dtype));
  }
  *quantize = fp8_cache && contains(kSupportedDTypes, k_new.dtype);
  if (!*quantize && k_new.dtype != cache_dtype) {
    return Status::Invalid(cat("k_new.dtype = ", k_new.dtype,
                               " must equal k_cache.dtype = ", cache_dtype,
                               fp8_cache ? " (codes), or be f32, bf16 or f16 with k_scale and "
                                           "v_scale to quantize"
                                         : ""));
  }
  if (v_new.dtype != k_new.dtype) {
    return Status::Invalid(
        cat("v_new.dtype = ", v_new.dtype, " must equal k_new.dtype = ", k_new.dtype));
  }
  for (const auto& [scale, rule] :
       {std::pair{&cache.k_scale, &kKScaleRule}, std::pair{&cache.v_scale, &kVScaleRule}}) {
    if (*quantize) {
      if (!scale->present()) {
        return Status::Invalid(cat(rule->name, " is missing: ", k_new.dtype, " tokens into an ",
                                   cache_dtype, " cache need f32 scales [1] or [num_kv_heads]"));
      }
    } else if (scale->present()) {
      return Status::Invalid(
          fp8_cache ? cat(rule->name, " is given but k_new.dtype = ", k_new.dtype,
                          ": codes are copied as they are; scales quantize f32, bf16 or f16 "
                          "tokens only")
                    : cat(rule->name, " is given but k_cache.dtype = ", cache_dtype,
                          ": scales belong to ", DType::kF8E4M3, " caches only"));
    }
  }
  return Status::Ok();
}

// Shape, dtype and values of a checked scale view.
Status check_scale(const TensorView& scale, std::string_view name, int64_t kv_heads) {
  if (scale.shape[0] != 1 && scale.shape[0] != kv_heads) {
    return Status::Invalid(
        cat(name, ".shape[0] = ", scale.shape[0], " must be 1 or num_kv_heads = ", kv_heads));
  }
  if (scale.dtype != DType::kF32) {
    return Status::Invalid(cat(name, ".dtype = ", scale.dtype, " must be f32"));
  }
  return check_scale_values(scale.as<const float>(), scale.strides[0], scale.shape[0], name);
}

Status check_slots(const int32_t* slots, int64_t n, int64_t capacity) {
  std::vector<std::pair<int32_t, int64_t>> used;
  used.reserve(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) {
    if (slots[t] == -1) continue;
    if (slots[t] < 0 || slots[t] >= capacity) {
      return Status::Invalid(cat("slot_mapping[", t, "] = ", slots[t], " is outside [0, ", capacity,
                                 ") (num_pages × page_size) and is not -1 (padding)"));
    }
    used.emplace_back(slots[t], t);
  }
  std::sort(used.begin(), used.end());
  for (size_t i = 1; i < used.size(); ++i) {
    if (used[i].first == used[i - 1].first) {
      return Status::Invalid(cat("slot_mapping[", used[i].second, "] = ", used[i].first,
                                 " duplicates slot_mapping[", used[i - 1].second,
                                 "]: two tokens cannot be written to one slot"));
    }
  }
  return Status::Ok();
}

// One token row of one kv head: `dim` elements from src element `from` to
// dst element `to`, byte for byte.
void copy_row(const TensorView& src, int64_t from, const TensorView& dst, int64_t to, int64_t dim) {
  const int64_t elem = dtype_size(dst.dtype);
  std::memcpy(static_cast<char*>(dst.data) + to * elem,
              static_cast<const char*>(src.data) + from * elem, static_cast<size_t>(dim * elem));
}

// The same row quantized into fp8 codes at `scale`.
void quantize_row(const TensorView& src, int64_t from, const TensorView& dst, int64_t to,
                  int64_t dim, float scale) {
  uint8_t* codes = static_cast<uint8_t*>(dst.data) + to;
  for (int64_t d = 0; d < dim; ++d) {
    codes[d] = f32_to_fp8_e4m3(load_as_f32(src.data, src.dtype, from + d) / scale);
  }
}

}  // namespace

Status write_kv(const TensorView& k_new, const TensorView& v_new, const TensorView& slot_mapping,
                const KvCache& cache) {
  RPA_RETURN_IF_ERROR(check_shapes(k_new, v_new, slot_mapping, cache));
  bool quantize = false;
  RPA_RETURN_IF_ERROR(check_dtypes(k_new, v_new, cache, &quantize));
  const int views_count = quantize ? 7 : 5;
  ByteSpan spans[7];
  const std::pair<const TensorView*, ViewRule> views[7] = {
      {&k_new, {"k_new", 3, "[num_new_tokens, num_kv_heads, head_dim]"}},
      {&v_new, {"v_new", 3, "[num_new_tokens, num_kv_heads, head_dim]"}},
      {&slot_mapping, {"slot_mapping", 1, "[num_new_tokens]"}},
      {&cache.k_cache, {"k_cache", 4, "[num_pages, page_size, num_kv_heads, head_dim]"}},
      {&cache.v_cache, {"v_cache", 4, "[num_pages, page_size, num_kv_heads, head_dim]"}},
      {&cache.k_scale, kKScaleRule},
      {&cache.v_scale, kVScaleRule},
  };
  for (int i = 0; i < views_count; ++i) {
    RPA_RETURN_IF_ERROR(check_view(*views[i].first, views[i].second, &spans[i]));
  }
  RPA_RETURN_IF_ERROR(check_distinct_elements(cache.k_cache, "k_cache"));
  RPA_RETURN_IF_ERROR(check_distinct_elements(cache.v_cache, "v_cache"));
  // The caches (views 3 and 4) are written: nothing may overlap them.
  for (int o : {3, 4}) {
    for (int i = 0; i < views_count; ++i) {
      if (i != o && spans[o].overlaps(spans[i])) {
        return Status::Invalid(cat(views[o].second.name, " overlaps ", views[i].second.name));
      }
    }
  }
  const TensorView& kc = cache.k_cache;
  const int64_t page_size = kc.shape[1], heads = kc.shape[2], dim = kc.shape[3];
  if (quantize) {
    RPA_RETURN_IF_ERROR(check_scale(cache.k_scale, "k_scale", heads));
    RPA_RETURN_IF_ERROR(check_scale(cache.v_scale, "v_scale", heads));
  }
  const int32_t* slots = slot_mapping.as<int32_t>();
  RPA_RETURN_IF_ERROR(check_slots(slots, slot_mapping.shape[0], kc.shape[0] * page_size));

  const auto scale_of = [](const TensorView& scale, int64_t h) {
    return scale.as<const float>()[scale.shape[0] == 1 ? 0 : h * scale.strides[0]];
  };
  for (int64_t t = 0; t < slot_mapping.shape[0]; ++t) {
    if (slots[t] == -1) continue;
    const int64_t page = slots[t] / page_size, offset = slots[t] % page_size;
    for (int64_t h = 0; h < heads; ++h) {
      for (auto [src, dst, scale] : {std::tuple{&k_new, &cache.k_cache, &cache.k_scale},
                                     std::tuple{&v_new, &cache.v_cache, &cache.v_scale}}) {
        const int64_t from = t * src->strides[0] + h * src->strides[1];
        const int64_t to = page * dst->strides[0] + offset * dst->strides[1] + h * dst->strides[2];
        if (quantize) {
          quantize_row(*src, from, *dst, to, dim, scale_of(*scale, h));
        } else {
          copy_row(*src, from, *dst, to, dim);
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace rpa
