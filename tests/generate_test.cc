// The batch generator keeps every promise of harness/generate/batch.h: it is
// reproducible, poisons every dead byte, and produces the mix it is asked for.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <span>
#include <stdexcept>
#include <utility>

#include "generate/batch.h"
#include "rpa/dtype.h"

namespace rpa::gen {
namespace {

BatchSpec small_spec(uint64_t seed, DType dtype = DType::kBF16, int32_t page_size = 16) {
  BatchSpec spec;
  spec.seed = seed;
  spec.dtype = dtype;
  spec.out_dtype = dtype;
  spec.page_size = page_size;
  spec.batch_capacity = 12;
  spec.num_active = 7;
  spec.max_context = 150;
  spec.max_chunk = 20;
  spec.max_prompt = 40;
  spec.sinks = true;
  return spec;
}

bool active(const Batch& b, int32_t s) {
  return b.seq_lens[s] > 0 && b.query_start_len[s + 1] > b.query_start_len[s];
}
int32_t q_len(const Batch& b, int32_t s) { return b.query_start_len[s + 1] - b.query_start_len[s]; }
int32_t live_pages(const Batch& b, int32_t s) {
  return (b.seq_lens[s] + b.spec.page_size - 1) / b.spec.page_size;
}
int32_t entry(const Batch& b, int32_t s, int32_t p) {
  return b.block_table[int64_t{s} * b.max_pages_per_seq + p];
}

// Counts NaN and out-of-[-1, 1] elements among `count` elements from `first`.
std::pair<int64_t, int64_t> nan_and_outside(std::span<const uint8_t> buffer, DType dtype,
                                            int64_t first, int64_t count) {
  int64_t nans = 0, outside = 0;
  for (int64_t i = first; i < first + count; ++i) {
    const float x = load_as_f32(buffer.data(), dtype, i);
    nans += std::isnan(x);
    outside += !std::isnan(x) && std::fabs(x) > 1.0f;
  }
  return {nans, outside};
}

// Of each physical page, how many leading tokens some active slot reads,
// worked out from the metadata alone.
std::vector<int32_t> live_tokens(const Batch& b) {
  std::vector<int32_t> live(b.num_pages, 0);
  for (int32_t s = 0; s < b.spec.batch_capacity; ++s) {
    if (!active(b, s)) continue;
    for (int32_t p = 0; p < live_pages(b, s); ++p) {
      const int32_t tokens = std::min(b.spec.page_size, b.seq_lens[s] - p * b.spec.page_size);
      live[entry(b, s, p)] = std::max(live[entry(b, s, p)], tokens);
    }
  }
  return live;
}

TEST(Generate, SameSeedSameBytesOtherSeedOtherBytes) {
  const Batch a = generate(small_spec(7));
  const Batch b = generate(small_spec(7));
  EXPECT_EQ(a.q, b.q);
  EXPECT_EQ(a.k_cache, b.k_cache);
  EXPECT_EQ(a.v_cache, b.v_cache);
  EXPECT_EQ(a.block_table, b.block_table);
  EXPECT_EQ(a.seq_lens, b.seq_lens);
  EXPECT_EQ(a.query_start_len, b.query_start_len);
  EXPECT_EQ(a.sinks, b.sinks);
  const Batch c = generate(small_spec(8));
  EXPECT_NE(a.seq_lens, c.seq_lens);
  EXPECT_NE(a.q, c.q);
}

// Golden values pin the PRNG and the draw order: a batch must be the same on
// every platform and standard library.
TEST(Generate, FixedSeedGivesFixedBatch) {
  const Batch b = generate(small_spec(1, DType::kF32));
  EXPECT_EQ(b.seq_lens, (std::vector<int32_t>{25, 22, 114, 12, 0, 101, 45, 39, 28, 31, 0, 98}));
  EXPECT_EQ(b.query_start_len,
            (std::vector<int32_t>{0, 0, 22, 31, 32, 32, 50, 50, 89, 117, 135, 135, 135}));
  EXPECT_EQ(b.num_pages, 33);
  EXPECT_EQ(b.max_pages_per_seq, 11);
  EXPECT_EQ(
      std::vector<int32_t>(b.block_table.begin() + 2 * 11, b.block_table.begin() + 2 * 11 + 8),
      (std::vector<int32_t>{2, 21, 22, 0, 15, 3, 5, 1}));
  EXPECT_EQ(load_as_f32(b.q.data(), DType::kF32, 0), 0x1.09f8fcp-1f);
}

TEST(Generate, DeadDataIsPoisonedAndLiveDataIsInRange) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int32_t page_size : {16, 32, 64}) {
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        SCOPED_TRACE(testing::Message()
                     << dtype_name(dtype) << " page " << page_size << " seed " << seed);
        const Batch b = generate(small_spec(seed, dtype, page_size));
        const int64_t token = int64_t{b.spec.num_kv_heads} * b.spec.head_dim;
        const std::vector<int32_t> live = live_tokens(b);
        for (int32_t page = 0; page < b.num_pages; ++page) {
          const int64_t first = int64_t{page} * page_size * token;
          const int64_t dead = (page_size - live[page]) * token;
          for (const PoolBytes* cache : {&b.k_cache, &b.v_cache}) {
            EXPECT_EQ(nan_and_outside(*cache, dtype, first, live[page] * token),
                      std::make_pair(int64_t{0}, int64_t{0}))
                << "page " << page;
            EXPECT_EQ(nan_and_outside(*cache, dtype, first + live[page] * token, dead).first, dead)
                << "page " << page;
          }
        }
        const int64_t row = token * b.spec.heads_per_kv;
        const int64_t padding = (b.num_tokens - b.live_rows()) * row;
        EXPECT_EQ(padding, b.spec.token_padding * row);
        EXPECT_EQ(nan_and_outside(b.q, dtype, 0, b.live_rows() * row),
                  std::make_pair(int64_t{0}, int64_t{0}));
        EXPECT_EQ(nan_and_outside(b.q, dtype, b.live_rows() * row, padding).first, padding);
        for (float sink : b.sinks) EXPECT_TRUE(sink >= -2.0f && sink <= 2.0f) << sink;
        EXPECT_EQ(b.sinks.size(), size_t{8});
      }
    }
  }
}

TEST(Generate, BlockTableLiveEntriesValidAndDeadEntriesGarbage) {
  bool saw_minus_one = false, saw_out_of_range = false;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const Batch b = generate(small_spec(seed));
    for (int32_t s = 0; s < b.spec.batch_capacity; ++s) {
      const int32_t pages = active(b, s) || q_len(b, s) == 0 ? live_pages(b, s) : 0;
      ASSERT_LE(pages, b.max_pages_per_seq);
      for (int32_t p = 0; p < b.max_pages_per_seq; ++p) {
        const int32_t e = entry(b, s, p);
        const bool in_range = e >= 0 && e < b.num_pages;
        if (p < pages) {
          EXPECT_TRUE(in_range) << "slot " << s << " page " << p << " = " << e;
        } else {
          EXPECT_FALSE(in_range) << "slot " << s << " page " << p << " = " << e;
          saw_minus_one |= e == -1;
          saw_out_of_range |= e != -1;
        }
      }
    }
  }
  EXPECT_TRUE(saw_minus_one);
  EXPECT_TRUE(saw_out_of_range);
}

// A physical page used twice is a shared prefix: the same logical page of
// both slots, full in both, preceded by the same pages.
void expect_distinct_unless_shared_prefix(const Batch& b, int* shared_pages) {
  std::map<int32_t, std::pair<int32_t, int32_t>> first_use;  // physical -> (slot, page)
  for (int32_t s = 0; s < b.spec.batch_capacity; ++s) {
    if (!active(b, s)) continue;
    for (int32_t p = 0; p < live_pages(b, s); ++p) {
      const auto [it, fresh] = first_use.emplace(entry(b, s, p), std::make_pair(s, p));
      if (fresh) continue;
      ++*shared_pages;
      const auto [owner, owner_page] = it->second;
      EXPECT_EQ(owner_page, p) << "slot " << s;
      EXPECT_LE((p + 1) * b.spec.page_size, b.seq_lens[owner]);
      EXPECT_LE((p + 1) * b.spec.page_size, b.seq_lens[s] - q_len(b, s));
      for (int32_t before = 0; before < p; ++before) {
        EXPECT_EQ(entry(b, s, before), entry(b, owner, before));
      }
    }
  }
}

TEST(Generate, PagesDistinctUnlessSharedPrefix) {
  int shared = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    BatchSpec spec = small_spec(seed);
    spec.shared_prefix_fraction = 0.0;
    expect_distinct_unless_shared_prefix(generate(spec), &shared);
  }
  EXPECT_EQ(shared, 0);
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    BatchSpec spec = small_spec(seed);
    spec.shared_prefix_fraction = 1.0;
    expect_distinct_unless_shared_prefix(generate(spec), &shared);
  }
  EXPECT_GT(shared, 0);
}

TEST(Generate, PagesArePermutedWithSparesInThePool) {
  BatchSpec spec = small_spec(3);
  spec.shared_prefix_fraction = 0.0;
  spec.permute_pages = false;
  const Batch plain = generate(spec);
  int32_t used = 0;
  for (int32_t s = 0; s < spec.batch_capacity; ++s)
    used += active(plain, s) ? live_pages(plain, s) : 0;
  EXPECT_EQ(plain.num_pages, used + spec.spare_pages);
  // Unpermuted, the active slots' pages are numbered in slot order.
  int32_t next = 0;
  for (int32_t s = 0; s < spec.batch_capacity; ++s) {
    for (int32_t p = 0; active(plain, s) && p < live_pages(plain, s); ++p) {
      EXPECT_EQ(entry(plain, s, p), next++);
    }
  }
  spec.permute_pages = true;
  const Batch permuted = generate(spec);
  EXPECT_EQ(permuted.num_pages, plain.num_pages);
  EXPECT_NE(permuted.block_table, plain.block_table);
}

TEST(Generate, RandomMixProducesWhatItPromises) {
  BatchSpec spec = small_spec(11);
  spec.batch_capacity = 64;
  spec.num_active = 40;
  const Batch b = generate(spec);
  int decode = 0, chunk = 0, fresh = 0, empty = 0, waiting = 0;
  for (int32_t s = 0; s < spec.batch_capacity; ++s) {
    const int32_t n = q_len(b, s);
    const int32_t context = b.seq_lens[s] - n;
    if (b.seq_lens[s] == 0) {
      ++empty;
    } else if (n == 0) {
      ++waiting;
    } else if (context == 0) {
      ++fresh;
      EXPECT_TRUE(n >= spec.min_prompt && n <= spec.max_prompt) << n;
    } else {
      EXPECT_TRUE(context >= spec.min_context && context <= spec.max_context) << context;
      ++(n == 1 ? decode : chunk);
      EXPECT_TRUE(n == 1 || (n >= spec.min_chunk && n <= spec.max_chunk)) << n;
    }
  }
  EXPECT_EQ(decode + chunk + fresh, 40);
  EXPECT_EQ(empty + waiting, 24);
  for (int count : {decode, chunk, fresh, empty, waiting}) EXPECT_GE(count, 5);
  // The active slots are scattered: some inactive slot comes before an active one.
  int32_t first_inactive = 0;
  while (active(b, first_inactive)) ++first_inactive;
  int32_t last_active = spec.batch_capacity - 1;
  while (!active(b, last_active)) --last_active;
  EXPECT_LT(first_inactive, last_active);
  EXPECT_EQ(b.num_tokens, b.live_rows() + spec.token_padding);
}

TEST(Generate, MixWeightsSelectKinds) {
  struct Case {
    double decode, chunk, fresh;
  };
  for (const Case c : {Case{1, 0, 0}, Case{0, 1, 0}, Case{0, 0, 1}}) {
    BatchSpec spec = small_spec(5);
    spec.decode_weight = c.decode;
    spec.chunk_weight = c.chunk;
    spec.fresh_weight = c.fresh;
    const Batch b = generate(spec);
    for (int32_t s = 0; s < spec.batch_capacity; ++s) {
      if (!active(b, s)) continue;
      const int32_t n = q_len(b, s);
      const bool decode = n == 1 && b.seq_lens[s] > 1;
      const bool chunk = n > 1 && b.seq_lens[s] > n;
      const bool fresh = b.seq_lens[s] == n;
      EXPECT_EQ(decode, c.decode > 0);
      EXPECT_EQ(chunk, c.chunk > 0);
      EXPECT_EQ(fresh, c.fresh > 0);
    }
  }
}

TEST(Generate, ExplicitSlotsArePlacedExactly) {
  BatchSpec spec = small_spec(2);
  spec.slots = {{3, 40}, {0, 0}, {1, 17}, {0, 25}};
  spec.slot_positions = {9, 0, 4, 6};
  spec.max_pages_per_seq = 5;
  const Batch b = generate(spec);
  EXPECT_EQ(b.max_pages_per_seq, 5);
  EXPECT_EQ(b.seq_lens[9], 43);
  EXPECT_EQ(q_len(b, 9), 3);
  EXPECT_EQ(b.seq_lens[4], 18);
  EXPECT_EQ(q_len(b, 4), 1);
  EXPECT_EQ(b.seq_lens[6], 25);
  EXPECT_EQ(q_len(b, 6), 0);
  EXPECT_EQ(b.seq_lens[0], 0);
  EXPECT_EQ(b.live_rows(), 4);

  // Without positions, the slots keep their order at increasing positions.
  spec.slot_positions.clear();
  const Batch ordered = generate(spec);
  std::vector<int32_t> seq_lens_in_order;
  for (int32_t s = 0; s < spec.batch_capacity; ++s) {
    if (q_len(ordered, s) > 0) seq_lens_in_order.push_back(ordered.seq_lens[s]);
  }
  EXPECT_EQ(seq_lens_in_order, (std::vector<int32_t>{43, 18}));
}

TEST(Generate, WaitingSlotsPointAtNanPages) {
  BatchSpec spec = small_spec(4, DType::kF32);
  spec.batch_capacity = 20;
  const Batch b = generate(spec);
  int waiting = 0;
  const int64_t page_elems = int64_t{spec.page_size} * spec.num_kv_heads * spec.head_dim;
  for (int32_t s = 0; s < spec.batch_capacity; ++s) {
    if (b.seq_lens[s] == 0 || q_len(b, s) != 0) continue;
    ++waiting;
    for (int32_t p = 0; p < live_pages(b, s); ++p) {
      const int64_t first = entry(b, s, p) * page_elems;
      EXPECT_EQ(nan_and_outside(b.k_cache, DType::kF32, first, page_elems).first, page_elems);
    }
  }
  EXPECT_GT(waiting, 0);
}

TEST(Generate, MaxPagesPerSeqDefaultsToLongestPlusAFew) {
  BatchSpec spec = small_spec(6);
  spec.slots = {{1, 99}, {5, 0}};  // 100 tokens: 7 pages of 16
  const Batch b = generate(spec);
  EXPECT_GT(b.max_pages_per_seq, 7);
  EXPECT_LE(b.max_pages_per_seq, 12);
  spec.max_pages_per_seq = 6;
  EXPECT_THROW(generate(spec), std::invalid_argument);
}

TEST(Generate, RejectsSpecsItCannotGenerate) {
  BatchSpec spec = small_spec(1);
  spec.num_active = spec.batch_capacity + 1;
  EXPECT_THROW(generate(spec), std::invalid_argument);
  spec = small_spec(1);
  spec.slots = {{1, 5}, {1, 5}};
  spec.slot_positions = {3, 3};
  EXPECT_THROW(generate(spec), std::invalid_argument);
  spec = small_spec(1);
  spec.dtype = DType::kI32;
  EXPECT_THROW(generate(spec), std::invalid_argument);
}

TEST(Generate, OutputBuffersStartAsSentinel) {
  BatchSpec spec = small_spec(1, DType::kBF16);
  spec.out_dtype = DType::kF32;
  const Batch b = generate(spec);
  std::vector<uint8_t> out = b.make_out();
  const int64_t elems = int64_t{b.num_tokens} * 8 * spec.head_dim;
  ASSERT_EQ(out.size(), size_t(elems * 4));
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t x) { return x == 0xff; }));
  EXPECT_TRUE(std::isnan(load_as_f32(out.data(), DType::kF32, 0)));
  const TensorView view = b.out_view(out);
  EXPECT_EQ(view.dtype, DType::kF32);
  EXPECT_EQ(view.numel(), elems);
  std::vector<float> lse = b.make_lse();
  ASSERT_EQ(lse.size(), size_t(b.num_tokens * 8));
  EXPECT_TRUE(std::isnan(lse[0]));
  EXPECT_EQ(b.lse_view(lse).rank, 3);
  const AttentionInputs in = b.inputs();
  EXPECT_EQ(in.q.shape[0], b.num_tokens);
  EXPECT_EQ(in.k_cache.shape[0], b.num_pages);
  EXPECT_EQ(in.block_table.shape[1], b.max_pages_per_seq);
  EXPECT_EQ(in.sinks.numel(), 8);
}

TEST(Generate, DemoSpecIsOneLlama3ServingStep) {
  BatchSpec spec = demo_spec();
  EXPECT_EQ(spec.num_kv_heads, 8);
  EXPECT_EQ(spec.heads_per_kv, 4);
  EXPECT_EQ(spec.head_dim, 128);
  EXPECT_EQ(spec.page_size, 16);
  EXPECT_EQ(spec.dtype, DType::kBF16);
  EXPECT_EQ(spec.out_dtype, DType::kBF16);
  EXPECT_EQ(spec.batch_capacity, 64);
  ASSERT_EQ(spec.slots.size(), size_t{24});
  int decode = 0, chunk = 0, fresh = 0;
  for (const SlotSpec& slot : spec.slots) {
    if (slot.q_len == 1) {
      ++decode;
      EXPECT_TRUE(slot.context_len >= 500 && slot.context_len <= 4000) << slot.context_len;
    } else if (slot.context_len > 0) {
      ++chunk;
      EXPECT_EQ(slot.q_len, 256);
      EXPECT_TRUE(slot.context_len >= 300 && slot.context_len <= 2000) << slot.context_len;
    } else {
      ++fresh;
      EXPECT_TRUE(slot.q_len >= 900 && slot.q_len <= 1100) << slot.q_len;
    }
  }
  EXPECT_EQ(decode, 18);
  EXPECT_EQ(chunk, 4);
  EXPECT_EQ(fresh, 2);

  // The same layout with narrow heads, to keep the test small: 24 live slots
  // scattered through 64, and pages permuted.
  spec.num_kv_heads = 1;
  spec.head_dim = 64;
  const Batch b = generate(spec);
  std::vector<int32_t> live;
  for (int32_t s = 0; s < 64; ++s) {
    if (active(b, s)) live.push_back(s);
  }
  ASSERT_EQ(live.size(), size_t{24});
  EXPECT_GT(live.back() - live.front(), 30);
  EXPECT_NE(entry(b, live[0], 1), entry(b, live[0], 0) + 1);
  EXPECT_EQ(b.live_rows(), 18 + 4 * 256 + 2024);
}

}  // namespace
}  // namespace rpa::gen
