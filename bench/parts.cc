#include "bench/parts.h"

namespace rpa::bench {

BatchPart::BatchPart(const gen::Batch& batch, Part part)
    : batch_(&batch), seq_lens_(batch.seq_lens) {
  for (int64_t s = 0; s < batch.spec.batch_capacity; ++s) {
    const int64_t q_len = batch.query_start_len[s + 1] - batch.query_start_len[s];
    // Slots without query rows are inactive in both parts already.
    if (q_len == 0) continue;
    if ((q_len == 1) != (part == Part::kDecode)) seq_lens_[s] = 0;
  }
}

AttentionInputs BatchPart::inputs() const {
  AttentionInputs in = batch_->inputs();
  in.seq_lens =
      TensorView::contiguous(seq_lens_.data(), DType::kI32, {int64_t{batch_->spec.batch_capacity}});
  return in;
}

}  // namespace rpa::bench
