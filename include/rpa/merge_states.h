// merge_states: combines two attention results over disjoint key sets into the
// result over their union (shared-prefix cascades, split-KV, context
// parallelism). Exact when neither part used sinks.
//
//   out_a, out_b, out  [rows..., head_dim]   f32 | bf16 | f16 (out may be f32 for any)
//   lse_a, lse_b, lse  [rows...]             f32, natural log of each softmax denominator
//
// A part that saw no key has lse = -inf and contributes nothing (no NaN).
// out and lse may be exactly out_a and lse_a (in place); no other overlap.
#pragma once

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa {

struct MergeInputs {
  TensorView out_a, lse_a;
  TensorView out_b, lse_b;
};

Status merge_states(const MergeInputs& inputs, const TensorView& out, const TensorView& lse);

}  // namespace rpa
