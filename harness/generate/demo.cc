#include "generate/batch.h"

namespace rpa::gen {

BatchSpec demo_spec() {
  BatchSpec spec;
  spec.seed = 8;
  spec.num_kv_heads = 8;
  spec.heads_per_kv = 4;
  spec.head_dim = 128;
  spec.page_size = 16;
  spec.dtype = DType::kBF16;
  spec.out_dtype = DType::kBF16;
  spec.batch_capacity = 64;
  spec.spare_pages = 64;

  // 18 decode rows with contexts spread over 500..4000 (most not page aligned).
  for (int32_t i = 0; i < 18; ++i) spec.slots.push_back({1, 500 + 3500 * i / 17});
  // Chunked prefill of 256 rows on 300..2000 tokens of context, and two fresh
  // prompts, interleaved with the decode rows as a scheduler would mix them.
  for (int32_t i = 0; i < 4; ++i) {
    spec.slots.insert(spec.slots.begin() + 2 + 6 * i, SlotSpec{256, 300 + 1700 * i / 3});
  }
  spec.slots.insert(spec.slots.begin() + 5, SlotSpec{1000, 0});
  spec.slots.insert(spec.slots.begin() + 17, SlotSpec{1024, 0});

  // A compiled token budget of 4096 rows, about 1000 of them padding.
  int32_t live_rows = 0;
  for (const SlotSpec& slot : spec.slots) live_rows += slot.q_len;
  spec.token_padding = 4096 - live_rows;
  return spec;
}

}  // namespace rpa::gen
