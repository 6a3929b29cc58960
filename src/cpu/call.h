// The CPU backend's view of one call: the tensors as byte pointers with element
// strides, the plan's task chains as item pointers, and the partials
// workspace.
// Everything here is built once per call, outside the SIMD code.
#pragma once

#include <cstdint>
#include <vector>

#include "core/problem.h"
#include "plan/item_decode.h"
#include "rpa/plan.h"

namespace rpa::cpu {

// A rank-3 prefix of a tensor: element (i, j, k, :) starts at element
// i * s[0] + j * s[1] + k * s[2] of `data`; the last dimension is contiguous.
struct Strided3 {
  void* data = nullptr;
  int64_t s[3] = {0, 0, 0};

  template <typename T>
  T* row(int64_t i, int64_t j, int64_t k) const {
    return static_cast<T*>(data) + (i * s[0] + j * s[1] + k * s[2]);
  }
};

// A run of items sharing one online-softmax state: items[0] starts the tile and
// items[count - 1] ends it.
struct Chain {
  const WorkItem* items = nullptr;
  int32_t count = 0;
};

struct CpuCall {
  const Problem* problem = nullptr;
  const Plan* plan = nullptr;

  Strided3 q;        // [num_tokens, num_kv_heads, heads_per_kv, head_dim], dtype
  Strided3 k_cache;  // [num_pages, page_size, num_kv_heads, head_dim], dtype
  Strided3 v_cache;
  Strided3 out;          // like q, out_dtype
  float* lse = nullptr;  // [num_tokens, num_kv_heads, heads_per_kv] f32, or null
  int64_t lse_strides[3] = {0, 0, 0};

  // plan->num_partial_rows rows of plan->partial_row_floats() floats (plan.h).
  float* partials = nullptr;

  // bf16 inputs on a CPU with AMX-BF16: prefill runs on tiles
  // (prefill_amx-inl.h). Else, with AVX512_BF16, prefill scores use vdpbf16ps.
  bool amx = false;
  bool bf16_dot = false;
  // AMX as above (or bf16 q on fp8 caches, with AVX512_VBMI to widen them),
  // and decode fits its tiles: heads_per_kv <= 8, head_dim a multiple of 32
  // (decode_amx-inl.h).
  bool amx_decode = false;

  // Per-thread scratch: thread i owns scratch_floats floats from
  // scratch + i * scratch_floats.
  float* scratch = nullptr;
  int64_t scratch_floats = 0;

  // The plan's task_chains, each as its first item and count: task t runs
  // chains [plan->tasks[t].first_chain, ... + chains) of this array.
  const Chain* chains = nullptr;
};

// Walks the keys of one item in order, resolving each to its physical page and
// slot in that page. The page is looked up only for keys that are read, so the
// cursor may step one past the item's last page.
class KeyCursor {
 public:
  KeyCursor(const Plan& plan, const WorkItem& item, int64_t key)
      : pages_(plan.pages.data()),
        page_size_(plan.page_size),
        index_(page_list_index(item, key, plan.page_size)),
        slot_(key % plan.page_size) {}

  int64_t page() const { return pages_[index_]; }
  int64_t slot() const { return slot_; }
  void next() {
    if (++slot_ == page_size_) {
      slot_ = 0;
      ++index_;
    }
  }

 private:
  const int32_t* pages_;
  int64_t page_size_;
  int64_t index_;
  int64_t slot_;
};

// Fills everything but `partials` and the scratch from a described problem
// and its plan. `chain_storage` holds plan.task_chains.size() elements;
// nothing is allocated.
void describe_call(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
                   const AttentionOutputs& outputs, Chain* chain_storage, CpuCall* call);

}  // namespace rpa::cpu
