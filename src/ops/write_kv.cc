// write_kv: validate everything first (shapes, dtypes, every slot, duplicates),
// then copy. Cost O(n log n) in the new tokens for the duplicate check.
#include "rpa/write_kv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/message.h"
#include "core/support.h"
#include "core/view_check.h"

namespace rpa {
namespace {

Status check_shapes(const TensorView& k_new, const TensorView& v_new, const TensorView& slots,
                    const KvCache& cache) {
  const TensorView& kc = cache.k_cache;
  if (kc.rank != 4) {
    return Status::Invalid(cat("k_cache.rank = ", kc.rank, " must be 4 ([num_pages, page_size, num_kv_heads, head_dim])"));
  }
  for (int d = 0; d < 4; ++d) {
    if (cache.v_cache.rank != 4 || cache.v_cache.shape[d] != kc.shape[d]) {
      return Status::Invalid(cat("v_cache.shape[", d, "] = ", cache.v_cache.shape[d],
                                 " must equal k_cache.shape[", d, "] = ", kc.shape[d]));
    }
  }
  // fp8 tokens arrive already quantized (codes for the cache's scales): the
  // copy is byte for byte, like every other dtype.
  if (!contains(kSupportedDTypes, kc.dtype) && !contains(kQuantizedKvDTypes, kc.dtype)) {
    return Status::Invalid(
        cat("k_cache.dtype = ", kc.dtype, " must be f32, bf16, f16 or fp8_e4m3"));
  }
  if (cache.v_cache.dtype != kc.dtype) {
    return Status::Invalid(cat("v_cache.dtype = ", cache.v_cache.dtype, " must equal k_cache.dtype = ", kc.dtype));
  }
  if (slots.rank != 1 || slots.dtype != DType::kI32) {
    return Status::Invalid(cat("slot_mapping must be a rank-1 i32 tensor, got rank ", slots.rank, " ", slots.dtype));
  }
  for (auto [name, v] : {std::pair{"k_new", &k_new}, std::pair{"v_new", &v_new}}) {
    if (v->rank != 3) return Status::Invalid(cat(name, ".rank = ", v->rank, " must be 3 ([num_new_tokens, num_kv_heads, head_dim])"));
    if (v->shape[0] != slots.shape[0]) {
      return Status::Invalid(cat(name, ".shape[0] = ", v->shape[0], " must equal slot_mapping.shape[0] = ", slots.shape[0]));
    }
    for (int d = 1; d < 3; ++d) {
      if (v->shape[d] != kc.shape[d + 1]) {
        return Status::Invalid(cat(name, ".shape[", d, "] = ", v->shape[d], " must equal k_cache.shape[", d + 1,
                                   "] = ", kc.shape[d + 1]));
      }
    }
    if (v->dtype != kc.dtype) return Status::Invalid(cat(name, ".dtype = ", v->dtype, " must equal k_cache.dtype = ", kc.dtype));
  }
  return Status::Ok();
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
      return Status::Invalid(cat("slot_mapping[", used[i].second, "] = ", used[i].first, " duplicates slot_mapping[",
                                 used[i - 1].second, "]: two tokens cannot be written to one slot"));
    }
  }
  return Status::Ok();
}

}  // namespace

Status write_kv(const TensorView& k_new, const TensorView& v_new, const TensorView& slot_mapping,
                const KvCache& cache) {
  RPA_RETURN_IF_ERROR(check_shapes(k_new, v_new, slot_mapping, cache));
  ByteSpan spans[5];
  const std::pair<const TensorView*, ViewRule> views[] = {
      {&k_new, {"k_new", 3, "[num_new_tokens, num_kv_heads, head_dim]"}},
      {&v_new, {"v_new", 3, "[num_new_tokens, num_kv_heads, head_dim]"}},
      {&slot_mapping, {"slot_mapping", 1, "[num_new_tokens]"}},
      {&cache.k_cache, {"k_cache", 4, "[num_pages, page_size, num_kv_heads, head_dim]"}},
      {&cache.v_cache, {"v_cache", 4, "[num_pages, page_size, num_kv_heads, head_dim]"}},
  };
  for (int i = 0; i < 5; ++i) RPA_RETURN_IF_ERROR(check_view(*views[i].first, views[i].second, &spans[i]));
  RPA_RETURN_IF_ERROR(check_distinct_elements(cache.k_cache, "k_cache"));
  RPA_RETURN_IF_ERROR(check_distinct_elements(cache.v_cache, "v_cache"));
  for (int o : {3, 4}) {
    for (int i = 0; i < 5; ++i) {
      if (i != o && spans[o].overlaps(spans[i])) {
        return Status::Invalid(cat(views[o].second.name, " overlaps ", views[i].second.name));
      }
    }
  }
  const TensorView& kc = cache.k_cache;
  const int64_t page_size = kc.shape[1], heads = kc.shape[2], dim = kc.shape[3];
  const int32_t* slots = slot_mapping.as<int32_t>();
  RPA_RETURN_IF_ERROR(check_slots(slots, slot_mapping.shape[0], kc.shape[0] * page_size));

  const int64_t elem = dtype_size(kc.dtype);
  for (int64_t t = 0; t < slot_mapping.shape[0]; ++t) {
    if (slots[t] == -1) continue;
    const int64_t page = slots[t] / page_size, offset = slots[t] % page_size;
    for (int64_t h = 0; h < heads; ++h) {
      for (auto [src, dst] : {std::pair{&k_new, &cache.k_cache}, std::pair{&v_new, &cache.v_cache}}) {
        const int64_t from = t * src->strides[0] + h * src->strides[1];
        const int64_t to = page * dst->strides[0] + offset * dst->strides[1] + h * dst->strides[2];
        std::memcpy(static_cast<char*>(dst->data) + to * elem, static_cast<const char*>(src->data) + from * elem,
                    static_cast<size_t>(dim * elem));
      }
    }
  }
  return Status::Ok();
}

}  // namespace rpa
