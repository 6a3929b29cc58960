// The end of a tile, shared by the decode and prefill paths: finalize and write
// out/lse, or store a split's partial state; and the merge of split partials.
// It uses the one state/merge of core/online_softmax.h. Scalar code: it runs
// once per tile row, not once per key.
#pragma once

#include "cpu/call.h"

namespace rpa::cpu {

// Flushes a finished tile whose state is held as packed rows i = r * G + g
// (r < last.q_rows, g < heads_per_kv): m[i], l[i] and o[i * head_dim, +head_dim).
// With last.partial == -1 each row is finalized (sink, 1 / l) and written to out
// and lse; otherwise the rows become the records of the partial rows from
// last.partial on.
// `o` is overwritten.
void flush_tile(const CpuCall& call, const WorkItem& last, const float* m, const float* l,
                float* o);

// Merges the partial rows of `group`'s splits in split order, finalizes each row and
// writes out and lse. `o` is head_dim floats of scratch.
void merge_tile(const CpuCall& call, const MergeGroup& group, float* o);

}  // namespace rpa::cpu
