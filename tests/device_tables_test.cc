// The device tables (include/rpa/device_tables.h) on many generated batches:
// the static bounds hold, rows carry exactly the pages they need, chains stay
// whole on one core, cores run one trip count, merges find their partials.
#include "rpa/device_tables.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "generate/batch.h"
#include "rpa/plan.h"

namespace rpa {
namespace {

gen::BatchSpec random_spec(uint64_t seed) {
  gen::BatchSpec spec;
  spec.seed = seed;
  spec.batch_capacity = 3 + static_cast<int32_t>(seed % 11);
  spec.num_active = std::min(spec.batch_capacity, 1 + static_cast<int32_t>(seed % 6));
  spec.page_size = std::array<int32_t, 4>{16, 32, 4, 1}[seed % 4];
  spec.heads_per_kv = std::array<int32_t, 3>{1, 4, 8}[(seed / 4) % 3];
  spec.num_kv_heads = 1 + static_cast<int32_t>(seed % 4);
  spec.head_dim = 64;
  spec.max_context = 700;
  spec.max_prompt = 200;
  spec.token_padding = static_cast<int32_t>(seed % 5);
  spec.options.sliding_window = seed % 3 == 0 ? 1 + static_cast<int32_t>(seed * 7 % 150) : 0;
  return spec;
}

// Small sizes so that short sequences cross many chunks and splits.
DeviceTablesConfig random_config(const gen::BatchSpec& spec, uint64_t seed) {
  DeviceTablesConfig c;
  c.q_tile_rows = seed % 5 == 0 ? 0 : static_cast<int32_t>(1 + seed % 9);
  c.kv_chunk_tokens =
      spec.page_size * static_cast<int32_t>(1 + (seed / 2) % 4) * std::max(1, 16 / spec.page_size);
  c.split_tokens = c.kv_chunk_tokens * static_cast<int32_t>(1 + seed % 3);
  c.kv_heads_per_row = seed % 2 == 0 ? 0 : 1;
  c.num_cores = 1 + static_cast<int32_t>(seed % 3);
  return c;
}

DeviceTables tables_of(const gen::Batch& batch, const DeviceTablesConfig& config) {
  DeviceTables t;
  const Status s = make_device_tables(batch.inputs(), batch.spec.options, &t, config);
  EXPECT_TRUE(s.ok()) << s.message();
  return t;
}

const int32_t* row_at(const std::vector<int32_t>& table, int32_t width, int64_t i) {
  return table.data() + i * width;
}

TEST(DeviceTables, StaticBoundsHoldOnRandomBatches) {
  for (uint64_t seed = 0; seed < 400; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    const DeviceTables t = tables_of(batch, random_config(batch.spec, seed));
    const int64_t max_rows = device_max_rows(t.shapes, t.config);
    EXPECT_LE(t.num_rows, max_rows) << "seed " << seed;
    EXPECT_LE(t.rows_per_core, max_rows) << "seed " << seed;
    EXPECT_LE(t.num_merges, device_max_merges(t.shapes, t.config)) << "seed " << seed;
    EXPECT_LE(t.merges_per_core, device_max_merges(t.shapes, t.config)) << "seed " << seed;
    EXPECT_LE(t.num_partial_rows, device_max_partial_rows(t.shapes, t.config)) << "seed " << seed;
    EXPECT_EQ(t.shapes.num_tokens, batch.num_tokens);
    EXPECT_EQ(t.shapes.max_pages_per_seq, batch.max_pages_per_seq);
  }
}

TEST(DeviceTables, RowsCarryExactlyThePagesOfTheirKeys) {
  for (uint64_t seed = 0; seed < 120; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    const DeviceTables t = tables_of(batch, random_config(batch.spec, seed));
    const int64_t page = t.shapes.page_size;
    const int64_t chunk = t.config.kv_chunk_tokens;
    ASSERT_EQ(t.row_width, kRowFields + chunk / page);
    // Every (row of q, kv head, key) the reference sees, counted once.
    std::map<std::tuple<int32_t, int32_t>, int64_t> keys_of_tile;
    for (int64_t i = 0; i < t.num_rows; ++i) {
      const int32_t* r = row_at(t.rows, t.row_width, i);
      ASSERT_GT(r[kRowQRows], 0);
      EXPECT_EQ(r[kRowKvBase] % chunk, 0);
      EXPECT_LE(r[kRowKvBase], r[kRowKvBegin]);
      EXPECT_LT(r[kRowKvBegin], r[kRowKvEnd]);
      EXPECT_LE(r[kRowKvEnd], r[kRowKvBase] + chunk);
      EXPECT_LE(r[kRowKvEnd], r[kRowSeqLen]);
      EXPECT_EQ(r[kRowKvHead] % t.config.kv_heads_per_row, 0);
      const int32_t* table =
          batch.block_table.data() + int64_t{r[kRowSlot]} * batch.max_pages_per_seq;
      for (int64_t p = 0; p < chunk / page; ++p) {
        const int64_t lo = r[kRowKvBase] + p * page;
        const bool used = lo < r[kRowKvEnd] && lo + page > r[kRowKvBegin];
        EXPECT_EQ(r[kRowFields + p], used ? table[lo / page] : -1)
            << "seed " << seed << " row " << i << " page slot " << p;
      }
      // An interior row needs no mask: every live lane sees every key.
      if ((r[kRowFlags] & kRowNeedsMask) == 0) {
        for (int32_t q = 0; q < r[kRowQRows]; ++q) {
          const int64_t pos = r[kRowQPos] + q;
          const int32_t w = batch.spec.options.sliding_window;
          const int64_t lo = w > 0 ? std::max<int64_t>(0, pos - w + 1) : 0;
          EXPECT_GE(r[kRowKvBegin], lo);
          EXPECT_LE(r[kRowKvEnd], std::min<int64_t>(pos + 1, r[kRowSeqLen]));
          EXPECT_EQ(r[kRowKvEnd] - r[kRowKvBegin], chunk);
        }
      }
      keys_of_tile[{r[kRowQRow], r[kRowKvHead]}] += r[kRowKvEnd] - r[kRowKvBegin];
    }
    // Each tile of each kv-head group streams its visible range once: as
    // many tiles as there are (q_row, kv_head) pairs, and reset rows count them.
    int64_t resets = 0;
    for (int64_t i = 0; i < t.num_rows; ++i) {
      resets += (row_at(t.rows, t.row_width, i)[kRowFlags] & kRowReset) != 0;
    }
    EXPECT_GE(resets, static_cast<int64_t>(keys_of_tile.size())) << "seed " << seed;
  }
}

TEST(DeviceTables, CoresRunOneTripCountWithWholeChains) {
  for (uint64_t seed = 0; seed < 150; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    const DeviceTables t = tables_of(batch, random_config(batch.spec, seed));
    const int32_t cores = t.config.num_cores;
    const int32_t w = t.row_width;
    ASSERT_EQ(static_cast<int64_t>(t.core_rows.size()), cores * t.rows_per_core * w);
    std::multiset<std::vector<int32_t>> real, placed;
    for (int64_t i = 0; i < t.num_rows; ++i) {
      const int32_t* r = row_at(t.rows, w, i);
      real.insert(std::vector<int32_t>(r, r + w));
    }
    int64_t longest_chain = 0, run = 0;
    for (int64_t i = 0; i < t.num_rows; ++i) {
      const int32_t flags = row_at(t.rows, w, i)[kRowFlags];
      run = (flags & kRowReset) ? 1 : run + 1;
      if (flags & kRowFlush) longest_chain = std::max(longest_chain, run);
    }
    std::vector<int64_t> live(static_cast<size_t>(cores), 0);
    for (int32_t c = 0; c < cores; ++c) {
      bool in_chain = false, padding = false;
      for (int64_t i = 0; i < t.rows_per_core; ++i) {
        const int32_t* r = row_at(t.core_rows, w, c * t.rows_per_core + i);
        if (r[kRowQRows] == 0) {  // a no-op row: only at the end, moving nothing
          padding = true;
          EXPECT_FALSE(in_chain);
          EXPECT_EQ(r[kRowFlags], 0);
          EXPECT_EQ(r[kRowPartial], -1);
          for (int32_t p = kRowFields; p < w; ++p) EXPECT_EQ(r[p], -1);
          continue;
        }
        EXPECT_FALSE(padding) << "seed " << seed << ": a live row after padding";
        EXPECT_EQ(in_chain, (r[kRowFlags] & kRowReset) == 0) << "seed " << seed;
        in_chain = (r[kRowFlags] & kRowFlush) == 0;
        placed.insert(std::vector<int32_t>(r, r + w));
        live[static_cast<size_t>(c)] += 1;
      }
      EXPECT_FALSE(in_chain);
    }
    EXPECT_EQ(real, placed) << "seed " << seed;
    const auto [lo, hi] = std::minmax_element(live.begin(), live.end());
    EXPECT_EQ(*hi, t.rows_per_core);
    // Longest-first dealing leaves the cores at most one chain apart.
    EXPECT_LE(*hi - *lo, std::max<int64_t>(longest_chain, 0)) << "seed " << seed;
  }
}

TEST(DeviceTables, MergeRowsFindEverySplitPartialOnce) {
  int64_t merged = 0;
  for (uint64_t seed = 0; seed < 150; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    const DeviceTables t = tables_of(batch, random_config(batch.spec, seed));
    std::set<int32_t> flushed;  // partial rows the rows flush to
    for (int64_t i = 0; i < t.num_rows; ++i) {
      const int32_t* r = row_at(t.rows, t.row_width, i);
      if (r[kRowPartial] >= 0) {
        EXPECT_TRUE(r[kRowFlags] & kRowFlush);
        EXPECT_LE(r[kRowPartial] + r[kRowQRows], t.num_partial_rows);
        EXPECT_TRUE(flushed.insert(r[kRowPartial]).second);
      }
    }
    std::set<int32_t> merged_rows;
    bool open = false;
    for (int64_t i = 0; i < t.num_merges; ++i) {
      const int32_t* m = row_at(t.merges, kMergeFields, i);
      EXPECT_EQ(open, (m[kMergeFlags] & kRowReset) == 0) << "seed " << seed;
      open = (m[kMergeFlags] & kRowFlush) == 0;
      EXPECT_TRUE(merged_rows.insert(m[kMergePartial]).second);
    }
    EXPECT_FALSE(open);
    EXPECT_EQ(flushed, merged_rows) << "seed " << seed;
    EXPECT_EQ(static_cast<int64_t>(t.core_merges.size()),
              t.config.num_cores * t.merges_per_core * kMergeFields);
    merged += t.num_merges;
  }
  EXPECT_GT(merged, 0) << "no batch split a tile: the test covers nothing";
}

TEST(DeviceTables, DecodeRowsHoldAllKvHeadsOfTheirGroup) {
  gen::BatchSpec spec = random_spec(7);
  spec.chunk_weight = spec.fresh_weight = 0.0;
  spec.num_kv_heads = 8;
  spec.heads_per_kv = 4;
  const gen::Batch batch = gen::generate(spec);
  Plan plan;
  PlanConfig pc{32, 64, 256};
  ASSERT_TRUE(make_plan(batch.inputs(), spec.options, &plan, pc).ok());
  DeviceTablesConfig dc{32, 64, 256, 0, 2};
  const DeviceTables t = tables_of(batch, dc);
  EXPECT_EQ(t.num_rows * 8, static_cast<int64_t>(plan.decode_items.size()));
  dc.kv_heads_per_row = 2;
  EXPECT_EQ(tables_of(batch, dc).num_rows * 2, static_cast<int64_t>(plan.decode_items.size()));
}

TEST(DeviceTables, ChunkSizeAmortisesTheLoopOverhead) {
  // Llama-3-8B per core: 8 kv heads x d128 bf16 = 4 KiB of K+V per token.
  EXPECT_EQ(device_kv_chunk_tokens(16, 8, 128, 2), 2048);
  EXPECT_EQ(device_kv_chunk_tokens(64, 8, 128, 2), 2048);
  EXPECT_EQ(device_kv_chunk_tokens(16, 1, 128, 2), 8192);  // capped
  EXPECT_EQ(device_kv_chunk_tokens(16, 8, 128, 4), 1024);
  EXPECT_EQ(device_kv_chunk_tokens(16, 64, 256, 4), 64);
  EXPECT_EQ(device_kv_chunk_tokens(48, 64, 256, 4), 48);  // a multiple of the page
}

TEST(DeviceTables, BadConfigIsRefusedWithItsValue) {
  const gen::Batch batch = gen::generate(random_spec(1));  // 2 kv heads, pages of 32
  DeviceTables t;
  DeviceTablesConfig c;
  c.kv_heads_per_row = 3;
  Status s = make_device_tables(batch.inputs(), batch.spec.options, &t, c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("kv_heads_per_row = 3"), std::string::npos) << s.message();
  c = {};
  c.num_cores = 0;
  s = make_device_tables(batch.inputs(), batch.spec.options, &t, c);
  EXPECT_NE(s.message().find("num_cores = 0"), std::string::npos) << s.message();
  c = {};
  c.kv_chunk_tokens = batch.spec.page_size * 2 + 1;
  s = make_device_tables(batch.inputs(), batch.spec.options, &t, c);
  EXPECT_NE(s.message().find("kv_chunk_tokens"), std::string::npos) << s.message();
}

// A plan with the CPU default's taller tiles for a long prompt has no one
// tile height to export; the same batch planned with an explicit height does.
TEST(DeviceTables, APlanOfMixedTileHeightsIsRefused) {
  gen::BatchSpec spec = random_spec(2);
  spec.heads_per_kv = 8;  // tall tiles from 512 rows on
  spec.slots = {{600, 0}, {20, 10}};
  spec.slot_positions = {0, 1};
  spec.batch_capacity = 2;
  const gen::Batch batch = gen::generate(spec);
  const AttentionInputs in = batch.inputs();
  DeviceShapes shapes;
  shapes.num_tokens = in.q.shape[0];
  shapes.batch_capacity = in.block_table.shape[0];
  shapes.max_pages_per_seq = in.block_table.shape[1];
  shapes.page_size = in.k_cache.shape[1];
  shapes.num_kv_heads = in.k_cache.shape[2];
  Plan plan;
  ASSERT_TRUE(make_plan(in, spec.options, &plan).ok());
  ASSERT_GT(plan.max_tile_rows, plan.config.q_tile_rows);
  DeviceTables t;
  const Status s = export_device_tables(plan, shapes, {}, &t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("explicit PlanConfig::q_tile_rows"), std::string::npos) << s.message();
  ASSERT_TRUE(make_plan(in, spec.options, &plan, PlanConfig{16, 0, 0}).ok());
  EXPECT_TRUE(export_device_tables(plan, shapes, {}, &t).ok());
}

}  // namespace
}  // namespace rpa
