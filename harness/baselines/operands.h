// Operands: the strided element addresses both baselines read and write.
// Problem (core/problem.h) holds the geometry and metadata; this adds the
// tensors' data pointers and outer strides, so a baseline can find
// q[t, h, g, :], k_cache[page, slot, h, :], out[t, h, g, :] and lse[t, h, g]
// whatever strides the caller chose (the last dimension is contiguous, which
// describe() checks).
#pragma once

#include <cstdint>

#include "core/problem.h"
#include "rpa/attention.h"

namespace rpa::baselines {

struct Operands {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // null when absent
  DType dtype = DType::kF32;     // q
  DType kv_dtype = DType::kF32;  // k, v
  DType out_dtype = DType::kF32;
  // Element strides of the three outer dimensions of each tensor.
  int64_t q_stride[3] = {};
  int64_t k_stride[3] = {};
  int64_t v_stride[3] = {};
  int64_t out_stride[3] = {};
  int64_t lse_stride[3] = {};

  // Element offsets of row (t, h, g) in q / out / lse and of key (page, slot, h) in k / v.
  int64_t q_at(int64_t t, int64_t h, int64_t g) const { return at(q_stride, t, h, g); }
  int64_t out_at(int64_t t, int64_t h, int64_t g) const { return at(out_stride, t, h, g); }
  int64_t lse_at(int64_t t, int64_t h, int64_t g) const { return at(lse_stride, t, h, g); }
  int64_t k_at(int64_t page, int64_t slot, int64_t h) const { return at(k_stride, page, slot, h); }
  int64_t v_at(int64_t page, int64_t slot, int64_t h) const { return at(v_stride, page, slot, h); }

  static Operands from(const Problem& problem, const AttentionInputs& inputs,
                       const AttentionOutputs& outputs) {
    Operands o;
    o.q = inputs.q.data;
    o.k = inputs.k_cache.data;
    o.v = inputs.v_cache.data;
    o.out = outputs.out.data;
    o.lse = outputs.lse.present() ? outputs.lse.as<float>() : nullptr;
    o.dtype = problem.dtype;
    o.kv_dtype = problem.kv_dtype;
    o.out_dtype = problem.out_dtype;
    for (int d = 0; d < 3; ++d) {
      o.q_stride[d] = inputs.q.strides[d];
      o.k_stride[d] = inputs.k_cache.strides[d];
      o.v_stride[d] = inputs.v_cache.strides[d];
      o.out_stride[d] = outputs.out.strides[d];
      o.lse_stride[d] = outputs.lse.present() ? outputs.lse.strides[d] : 0;
    }
    return o;
  }

 private:
  static int64_t at(const int64_t (&stride)[3], int64_t a, int64_t b, int64_t c) {
    return a * stride[0] + b * stride[1] + c * stride[2];
  }
};

// Converts `n` elements of dtype `t` starting at element `offset` of `data` to f32.
inline void load_row_f32(const void* data, DType t, int64_t offset, int64_t n, float* dst) {
  switch (t) {
    case DType::kF32: {
      const float* src = static_cast<const float*>(data) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
      return;
    }
    case DType::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(data) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
      return;
    }
    default:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_as_f32(data, t, offset + i);
      return;
  }
}

// Writes `n` f32 values as dtype `t` starting at element `offset` of `data`.
inline void store_row(const float* src, int64_t n, void* data, DType t, int64_t offset) {
  for (int64_t i = 0; i < n; ++i) store_from_f32(data, t, offset + i, src[i]);
}

}  // namespace rpa::baselines
