// The plan as one host image that a single copy uploads: items, chain ranges,
// pages, merge groups and the fp8 scales, each section 16-byte aligned, with
// room for the split partials after them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/problem.h"
#include "cuda/kernel_args.h"
#include "rpa/plan.h"

namespace rpa::cuda {

struct PackedPlan {
  std::vector<std::byte> image;  // what is uploaded
  size_t decode_items = 0, decode_chains = 0, prefill_items = 0, prefill_chains = 0;
  size_t pages = 0, merges = 0, k_scale = 0, v_scale = 0, partials = 0;  // byte offsets
  size_t total_bytes = 0;  // image plus the partials
  int32_t num_decode_chains = 0;
  int32_t num_prefill_chains = 0;
  bool has_scales = false;  // an fp8 cache: k_scale and v_scale hold num_kv_heads floats
};

// Packs `plan` (of `problem`); cost O(items + pages + merges).
PackedPlan pack_plan(const Problem& problem, const Plan& plan);

// Points the plan fields of `args` into `device` (total_bytes, holding the
// uploaded image).
void bind_plan(const PackedPlan& packed, const Plan& plan, std::byte* device, KernelArgs* args);

}  // namespace rpa::cuda
