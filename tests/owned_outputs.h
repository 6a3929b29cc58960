// Output buffers for a generated batch, filled with the generator's sentinel,
// and their views (lse only when the batch's spec asks for it). Shared by the
// backend tests so every one of them allocates outputs the same way.
#pragma once

#include <cstdint>
#include <vector>

#include "generate/batch.h"

namespace rpa {

struct Outputs {
  std::vector<uint8_t> out;
  std::vector<float> lse;
  AttentionOutputs views;
};

inline Outputs make_outputs(const gen::Batch& batch) {
  Outputs o{batch.make_out(), batch.make_lse(), {}};
  o.views.out = batch.out_view(o.out);
  if (batch.spec.lse) o.views.lse = batch.lse_view(o.lse);
  return o;
}

}  // namespace rpa
