// The end of a tile, shared by the decode and prefill paths: finalize and write
// out/lse, or store a split's partial state; and the merge of split partials.
// It uses the one state/merge of core/online_softmax.h. Its loops run once per
// tile row, not once per key, and are left to the compiler, which vectorizes
// them for each target (normalize, round to bf16 or f16). Compiled for SSE2
// alone they took 16% of a one-thread 512-row bf16 prefill
// (`BM_PrefillKernel/bf16` 8.16-8.19 ms per target, 8.69-8.98 for SSE2).
// Per-target code rather than compiler clones (target_clones): a clone's
// resolver runs before ThreadSanitizer's runtime starts and crashes it.

// Per-target include guard, as Highway's foreach_target.h requires.
#if defined(RPA_CPU_EPILOGUE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_EPILOGUE_INL_H_
#undef RPA_CPU_EPILOGUE_INL_H_
#else
#define RPA_CPU_EPILOGUE_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/online_softmax.h"
#include "cpu/call.h"
#include "hwy/highway.h"
#include "plan/item_decode.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// Finalizes packed row (t, h, g) from state `s` and `o` (head_dim floats, then
// normalized in place) and writes it to out and, when requested, lse.
HWY_INLINE void write_row(const CpuCall& call, int64_t t, int64_t h, int64_t g, RowState s,
                          float* o) {
  const Problem& p = *call.problem;
  const float* sink = p.sinks != nullptr ? p.sinks + h * p.heads_per_kv + g : nullptr;
  const float lse = finalize_state(s, o, p.head_dim, sink);
  switch (p.out_dtype) {
    case DType::kBF16: {
      uint16_t* dst = call.out.row<uint16_t>(t, h, g);
      for (int64_t d = 0; d < p.head_dim; ++d) dst[d] = f32_to_bf16(o[d]);
      break;
    }
    case DType::kF16: {
      uint16_t* dst = call.out.row<uint16_t>(t, h, g);
      for (int64_t d = 0; d < p.head_dim; ++d) dst[d] = f32_to_f16(o[d]);
      break;
    }
    default:
      std::memcpy(call.out.row<float>(t, h, g), o, sizeof(float) * p.head_dim);
      break;
  }
  if (call.lse != nullptr) {
    call.lse[t * call.lse_strides[0] + h * call.lse_strides[1] + g * call.lse_strides[2]] = lse;
  }
}

// Record i (= row * heads_per_kv + head) of the chain whose partial rows
// start at `row`.
HWY_INLINE float* partial_record(const CpuCall& call, int64_t row, int64_t i) {
  return call.partials +
         partial_record_offset(row, i, call.plan->heads_per_kv, call.plan->head_dim);
}

// Flushes a finished tile whose state is held as packed rows i = r * G + g
// (r < last.q_rows, g < heads_per_kv): m[i], l[i] and o[i * head_dim, +head_dim).
// With last.partial == -1 each row is finalized (sink, 1 / l) and written to out
// and lse; otherwise the rows become the records of the partial rows from
// last.partial on. `o` is overwritten.
HWY_NOINLINE void flush_tile(const CpuCall& call, const WorkItem& last, const float* m,
                             const float* l, float* o) {
  const int64_t heads = call.problem->heads_per_kv;
  const int64_t dim = call.problem->head_dim;
  const int64_t rows = int64_t{last.q_rows} * heads;
  for (int64_t i = 0; i < rows; ++i) {
    float* oi = o + i * dim;
    if (last.partial < 0) {
      write_row(call, last.q_row + i / heads, last.kv_head, i % heads, RowState{m[i], l[i]}, oi);
    } else {
      float* record = partial_record(call, last.partial, i);
      record[0] = m[i];
      record[1] = l[i];
      std::memcpy(record + 2, oi, sizeof(float) * dim);
    }
  }
}

// Merges the partial rows of `group`'s splits in split order, finalizes each row and
// writes out and lse. `o` is head_dim floats of scratch.
HWY_NOINLINE void merge_tile(const CpuCall& call, const MergeGroup& group, float* o) {
  const int64_t heads = call.problem->heads_per_kv;
  const int64_t dim = call.problem->head_dim;
  const int64_t rows = int64_t{group.q_rows} * heads;
  for (int64_t i = 0; i < rows; ++i) {
    RowState state;
    std::fill(o, o + dim, 0.0f);
    for (int32_t split = 0; split < group.count; ++split) {
      const float* record =
          partial_record(call, group.first_partial + int64_t{split} * group.q_rows, i);
      merge_state(state, o, RowState{record[0], record[1]}, record + 2, dim);
    }
    write_row(call, group.q_row + i / heads, group.kv_head, i % heads, state, o);
  }
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_EPILOGUE_INL_H_
