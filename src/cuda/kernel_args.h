// What every CUDA kernel of a call receives, by value: the tensors as device
// pointers with element strides, the options, and the plan as it lies in the
// call's device buffer. Plain C++, shared by the host code and the kernels.
#pragma once

#include <cstdint>

#include "rpa/dtype.h"
#include "rpa/plan.h"

namespace rpa::cuda {

// A rank-3 prefix of a device tensor: element (i, j, k, 0) is at
// i * s[0] + j * s[1] + k * s[2]; the last dimension is contiguous.
struct DeviceStrided3 {
  void* data = nullptr;
  int64_t s[3] = {0, 0, 0};
};

struct KernelArgs {
  int32_t num_kv_heads = 0;
  int32_t heads_per_kv = 0;
  int32_t head_dim = 0;
  int32_t page_size = 0;
  DType q_dtype = DType::kF32;
  DType kv_dtype = DType::kF32;
  DType out_dtype = DType::kF32;

  float scale = 1.0f;
  float logit_soft_cap = 0.0f;
  int32_t sliding_window = 0;

  DeviceStrided3 q, k_cache, v_cache, out;
  float* lse = nullptr;  // null = not requested
  int64_t lse_s[3] = {0, 0, 0};
  const float* sinks = nullptr;  // [num_kv_heads * heads_per_kv] or null

  // The plan, in the call's device buffer. Decode chain c is items
  // [decode_chains[c], decode_chains[c + 1]); prefill chain c is items
  // [prefill_chains[2c], prefill_chains[2c + 1]).
  const WorkItem* decode_items = nullptr;
  const int32_t* decode_chains = nullptr;
  int32_t num_decode_chains = 0;
  const WorkItem* prefill_items = nullptr;
  const int32_t* prefill_chains = nullptr;  // costliest chain first
  int32_t num_prefill_chains = 0;
  const int32_t* pages = nullptr;
  const MergeGroup* merges = nullptr;
  int32_t num_merges = 0;
  int32_t max_tile_rows = 0;
  // fp8 caches: one scale per kv head (a per-tensor scale is repeated).
  const float* k_scale = nullptr;
  const float* v_scale = nullptr;

  // Split partials, laid out as plan/item_decode.h says; each record holds
  // m, l, o[head_dim] (o times v_scale).
  float* partials = nullptr;
};

}  // namespace rpa::cuda
