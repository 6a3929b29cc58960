// The decode and prefill parts of a mixed batch (bench/parts.h), which
// `rpa bench mixed` times alone against the whole batch: each part keeps only
// its own slots live, and its rows come out bitwise as in the whole batch
// while the other part's rows are not written.
#include "bench/parts.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "generate/batch.h"
#include "owned_outputs.h"

namespace rpa::bench {
namespace {

// Decode rows, a chunk on context, a fresh prompt, a slot waiting with
// context but no rows, and empty slots between them, in capacity 10.
gen::Batch mixed_batch() {
  gen::BatchSpec spec;
  spec.seed = 61;
  spec.batch_capacity = 10;
  spec.slots = {{1, 40}, {9, 30}, {1, 70}, {0, 20}, {17, 0}, {1, 5}};
  spec.slot_positions = {0, 2, 3, 5, 6, 9};
  return gen::generate(spec);
}

int64_t q_len(const gen::Batch& batch, int64_t s) {
  return batch.query_start_len[s + 1] - batch.query_start_len[s];
}

TEST(BenchParts, EachPartKeepsOnlyItsOwnSlotsLive) {
  const gen::Batch batch = mixed_batch();
  const BatchPart decode(batch, Part::kDecode), prefill(batch, Part::kPrefill);
  for (int64_t s = 0; s < batch.spec.batch_capacity; ++s) {
    const int32_t seq_len = batch.seq_lens[s];
    if (q_len(batch, s) == 0) {  // inactive already: left as it was
      EXPECT_EQ(decode.seq_lens()[s], seq_len) << s;
      EXPECT_EQ(prefill.seq_lens()[s], seq_len) << s;
    } else if (q_len(batch, s) == 1) {
      EXPECT_EQ(decode.seq_lens()[s], seq_len) << s;
      EXPECT_EQ(prefill.seq_lens()[s], 0) << s;
    } else {
      EXPECT_EQ(decode.seq_lens()[s], 0) << s;
      EXPECT_EQ(prefill.seq_lens()[s], seq_len) << s;
    }
  }
  // Everything else is the batch's own tensors, viewed.
  const AttentionInputs whole = batch.inputs(), part = prefill.inputs();
  EXPECT_EQ(part.q.data, whole.q.data);
  EXPECT_EQ(part.k_cache.data, whole.k_cache.data);
  EXPECT_EQ(part.block_table.data, whole.block_table.data);
  EXPECT_EQ(part.query_start_len.data, whole.query_start_len.data);
  EXPECT_EQ(part.seq_lens.data, prefill.seq_lens().data());
}

TEST(BenchParts, PartRowsMatchTheWholeBatchAndOtherRowsAreUntouched) {
  const gen::Batch batch = mixed_batch();
  const int64_t row_bytes = int64_t{batch.spec.num_kv_heads} * batch.spec.heads_per_kv *
                            batch.spec.head_dim * dtype_size(batch.spec.out_dtype);
  for (Backend backend : {Backend::kCpu, Backend::kSingleLoop, Backend::kReference}) {
    Outputs whole = make_outputs(batch);
    ASSERT_TRUE(attention(batch.inputs(), batch.spec.options, whole.views, {backend}).ok());
    for (Part kind : {Part::kDecode, Part::kPrefill}) {
      const BatchPart part(batch, kind);
      Outputs got = make_outputs(batch);
      const Status s = attention(part.inputs(), batch.spec.options, got.views, {backend});
      ASSERT_TRUE(s.ok()) << s.message();
      const std::vector<uint8_t> untouched = batch.make_out();
      for (int64_t slot = 0; slot < batch.spec.batch_capacity; ++slot) {
        const int64_t rows = q_len(batch, slot);
        if (rows == 0) continue;
        const bool mine = (rows == 1) == (kind == Part::kDecode);
        const int64_t at = batch.query_start_len[slot] * row_bytes;
        const uint8_t* want = mine ? whole.out.data() + at : untouched.data() + at;
        EXPECT_EQ(std::memcmp(got.out.data() + at, want, rows * row_bytes), 0)
            << backend_name(backend) << " slot " << slot
            << (mine ? " (its part)" : " (other part)");
      }
    }
  }
}

}  // namespace
}  // namespace rpa::bench
