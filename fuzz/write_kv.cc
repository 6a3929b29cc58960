// Fuzz target: rpa::write_kv (include/rpa/write_kv.h) with slot mappings,
// shapes, strides, dtypes and scales decoded from the bytes. Property: on
// error the caches are byte for byte as they were; on success they equal the
// old caches with exactly the mapped rows replaced (copied, or quantized with
// the cache's scales), every other byte (padding included) untouched.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "fuzz_tensor.h"
#include "rpa/write_kv.h"

namespace {

using rpa::DType;
using rpa::TensorView;
using rpa::fuzz::Tensor;

Tensor make_tensor(FuzzedDataProvider& in, DType dtype, std::initializer_list<int64_t> shape) {
  return rpa::fuzz::make_tensor(in, dtype, shape.begin(), static_cast<int>(shape.size()), true);
}

[[noreturn]] void fail(const char* what) { rpa::fuzz::fail("fuzz_write_kv", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  constexpr std::array kDTypes = {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3, DType::kI32};
  const DType cache_t = kDTypes[in.ConsumeIntegralInRange(0, 3)];
  // Tokens of the cache's dtype, or (to quantize into fp8) another one.
  const DType new_t = in.ConsumeIntegralInRange(0, 3) == 0 ? kDTypes[in.ConsumeIntegralInRange(0, 4)] : cache_t;
  const auto small = [&](int64_t lo, int64_t hi) { return in.ConsumeIntegralInRange<int64_t>(lo, hi); };
  const auto off = [&] { return small(0, 15) == 0 ? small(-1, 1) : 0; };
  const int64_t tokens = small(0, 8), heads = small(1, 3), dim = small(0, 6), pages = small(0, 4),
                page = small(1, 4);
  Tensor k_new = make_tensor(in, new_t, {tokens, heads, dim});
  Tensor v_new = make_tensor(in, new_t, {tokens + off(), heads, dim});
  Tensor slots = make_tensor(in, DType::kI32, {tokens + off()});
  Tensor k_cache = make_tensor(in, cache_t, {pages, page, heads, dim});
  Tensor v_cache = make_tensor(in, cache_t, {pages, page + off(), heads, dim + off()});
  if (slots.view.shape[0] < 0 || v_new.view.shape[0] < 0) return 0;
  // Slots: mostly in range or -1 (so duplicates happen), sometimes anything.
  for (int64_t t = 0; t < slots.view.shape[0]; ++t) {
    slots.view.as<int32_t>()[t] = small(0, 15) == 0
                                      ? in.ConsumeIntegral<int32_t>()
                                      : static_cast<int32_t>(small(-1, pages * page));
  }
  rpa::KvCache cache{k_cache.view, v_cache.view};
  Tensor k_scale, v_scale;
  if ((cache_t == DType::kF8E4M3 && new_t != cache_t) != (small(0, 15) == 0)) {
    const int64_t n = in.ConsumeBool() ? 1 : heads + off();
    k_scale = make_tensor(in, DType::kF32, {std::max<int64_t>(n, 0)});
    v_scale = make_tensor(in, DType::kF32, {std::max<int64_t>(n, 0)});
    const float kValues[] = {0.5f, 0.01f, 3.0f, 0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN()};
    for (Tensor* s : {&k_scale, &v_scale}) {
      for (int64_t i = 0; i < s->view.shape[0]; ++i) {
        s->view.as<float>()[i] = kValues[small(0, 15) == 0 ? small(3, 5) : small(0, 2)];
      }
    }
    cache.k_scale = k_scale.view;
    cache.v_scale = v_scale.view;
  }
  const std::vector<uint8_t> k_before = k_cache.bytes, v_before = v_cache.bytes;
  const rpa::Status status = rpa::write_kv(k_new.view, v_new.view, slots.view, cache);
  if (!status.ok()) {
    if (status.message().empty()) fail("an error without a message");
    if (k_cache.bytes != k_before || v_cache.bytes != v_before) fail("a failed call wrote a cache");
    return 0;
  }
  // The oracle: the old caches with the mapped rows written, by hand.
  const bool quantize = new_t != cache_t;
  std::vector<uint8_t> k_want = k_before, v_want = v_before;
  const int64_t esize = rpa::dtype_size(cache_t);
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t slot = slots.view.as<int32_t>()[t];
    if (slot == -1) continue;
    if (slot < 0 || slot >= pages * page) fail("an out-of-range slot was accepted");
    for (int64_t h = 0; h < heads; ++h) {
      for (auto [src, want, dst, scale] :
           {std::tuple{&k_new, &k_want, &k_cache, &k_scale}, std::tuple{&v_new, &v_want, &v_cache, &v_scale}}) {
        const TensorView& c = dst->view;
        const int64_t to = (slot / page) * c.strides[0] + (slot % page) * c.strides[1] + h * c.strides[2];
        const int64_t from = t * src->view.strides[0] + h * src->view.strides[1];
        for (int64_t d = 0; d < dim; ++d) {
          if (quantize) {
            const TensorView& sv = scale->view;
            const float s = sv.as<float>()[sv.shape[0] == 1 ? 0 : h];
            (*want)[to + d] = rpa::f32_to_fp8_e4m3(rpa::load_as_f32(src->bytes.data(), new_t, from + d) / s);
          } else {
            std::memcpy(&(*want)[(to + d) * esize], &src->bytes[(from + d) * esize], esize);
          }
        }
      }
    }
  }
  if (k_cache.bytes != k_want || v_cache.bytes != v_want) fail("the caches differ from the oracle");
  return 0;
}
