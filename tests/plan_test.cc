// Properties of the planner over many generated batches (issue 3).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/problem.h"
#include "generate/batch.h"
#include "owned_outputs.h"
#include "plan/heuristics.h"
#include "rpa/plan.h"

namespace rpa {
namespace {

gen::BatchSpec random_spec(uint64_t seed) {
  gen::BatchSpec spec;
  spec.seed = seed;
  spec.batch_capacity = 4 + static_cast<int32_t>(seed % 13);
  spec.num_active = std::min(spec.batch_capacity, 1 + static_cast<int32_t>(seed % 7));
  spec.page_size = std::array<int32_t, 3>{16, 32, 64}[seed % 3];
  spec.heads_per_kv = std::array<int32_t, 3>{1, 4, 8}[(seed / 3) % 3];
  spec.num_kv_heads = 1 + static_cast<int32_t>(seed % 2);
  spec.max_context = 900;
  spec.max_prompt = 300;
  spec.options.sliding_window = (seed % 4 == 0) ? 1 + static_cast<int32_t>(seed * 7 % 200) : 0;
  return spec;
}

// A small config so that tiles, chunks and splits all show up in small batches.
PlanConfig small_config(const gen::BatchSpec& spec) {
  return PlanConfig{7, spec.page_size * 2, spec.page_size * 6};
}

Plan plan_of(const gen::Batch& batch, const PlanConfig& config) {
  Plan plan;
  const Status s = make_plan(batch.inputs(), batch.spec.options, &plan, config);
  EXPECT_TRUE(s.ok()) << s.message();
  return plan;
}

std::vector<WorkItem> all_items(const Plan& plan) {
  std::vector<WorkItem> items = plan.decode_items;
  items.insert(items.end(), plan.prefill_items.begin(), plan.prefill_items.end());
  return items;
}

// Keys [lo, hi) that the query row at absolute position `pos` sees.
std::pair<int64_t, int64_t> visible_range(int64_t pos, int64_t seq_len, int32_t window) {
  const int64_t hi = std::min(pos + 1, seq_len);
  const int64_t lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
  return {lo, hi};
}

TEST(Plan, ItemsCoverExactlyTheVisibleKeysOfEveryRow) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    for (const PlanConfig config : {PlanConfig{}, small_config(batch.spec)}) {
      const Plan plan = plan_of(batch, config);
      // For every (token row, kv head), count how often each key is streamed to it.
      std::map<std::tuple<int64_t, int64_t, int64_t>, int> streamed;
      for (const WorkItem& item : all_items(plan)) {
        bool any_visible = false;
        for (int64_t r = 0; r < item.q_rows; ++r) {
          const auto [lo, hi] = visible_range(item.q_pos + r, item.seq_len, plan.options.sliding_window);
          for (int64_t k = item.kv_begin; k < item.kv_end; ++k) {
            if (k >= lo && k < hi) {
              ++streamed[{item.q_row + r, item.kv_head, k}];
              any_visible = true;
            }
          }
        }
        // An item may hold keys some of its rows cannot see (the masked edge),
        // but never a chunk that no row of its tile sees.
        EXPECT_TRUE(any_visible) << "seed " << seed << " slot " << item.slot;
        EXPECT_LE(item.kv_end, item.seq_len);
      }
      // Brute force: each row sees each visible key exactly once per kv head.
      int64_t visible_total = 0;
      for (int64_t s = 0; s < batch.spec.batch_capacity; ++s) {
        const int64_t q0 = batch.query_start_len[s], q_len = batch.query_start_len[s + 1] - q0;
        const int64_t seq_len = batch.seq_lens[s];
        if (seq_len == 0 || q_len == 0) continue;
        for (int64_t i = 0; i < q_len; ++i) {
          const auto [lo, hi] = visible_range(seq_len - q_len + i, seq_len, plan.options.sliding_window);
          visible_total += hi - lo;
          for (int64_t h = 0; h < batch.spec.num_kv_heads; ++h) {
            for (int64_t k = lo; k < hi; ++k) {
              auto it = streamed.find({q0 + i, h, k});
              ASSERT_NE(it, streamed.end()) << "seed " << seed << " slot " << s << " key " << k;
              EXPECT_EQ(it->second, 1);
              streamed.erase(it);
            }
          }
        }
      }
      EXPECT_TRUE(streamed.empty()) << "seed " << seed << ": keys streamed to rows that cannot see them";
      EXPECT_EQ(plan.stats.visible_kv_tokens, visible_total);
      EXPECT_GE(plan.stats.streamed_kv_tokens, plan.stats.visible_kv_tokens);
    }
  }
}

TEST(Plan, ItemsListOnlyLivePagesOfTheirSlot) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    const Plan plan = plan_of(batch, small_config(batch.spec));
    const int64_t page = batch.spec.page_size;
    for (const WorkItem& item : all_items(plan)) {
      const int32_t* table = &batch.block_table[item.slot * batch.max_pages_per_seq];
      const int64_t live_pages = (item.seq_len + page - 1) / page;
      for (int64_t p = item.kv_begin / page; p <= (item.kv_end - 1) / page; ++p) {
        ASSERT_LT(p, live_pages);
        EXPECT_EQ(plan.pages[item.page_index + p - item.kv_begin / page], table[p]);
      }
    }
  }
}

TEST(Plan, InactiveSlotsProduceNothing) {
  gen::BatchSpec spec;
  spec.batch_capacity = 12;
  spec.slots = {{1, 40}, {0, 30}, {5, 0}, {3, 20}};  // a q_len 0 slot in the middle
  spec.slot_positions = {1, 4, 7, 10};
  const gen::Batch batch = gen::generate(spec);
  const Plan plan = plan_of(batch, {});
  for (const WorkItem& item : all_items(plan)) {
    EXPECT_TRUE(item.slot == 1 || item.slot == 7 || item.slot == 10) << item.slot;
  }
  EXPECT_EQ(plan.stats.live_slots, 3);
  EXPECT_EQ(plan.stats.decode_rows, 1);
  EXPECT_EQ(plan.stats.prefill_rows, 8);
}

TEST(Plan, ChainsAreContiguousAndPartialsMergeInOrder) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    const Plan plan = plan_of(batch, small_config(batch.spec));
    std::vector<int> partial_seen(plan.num_partial_rows, 0);
    for (const std::vector<WorkItem>* items : {&plan.decode_items, &plan.prefill_items}) {
      bool open = false;
      for (const WorkItem& item : *items) {
        EXPECT_EQ(item.starts_tile(), !open) << "seed " << seed;
        open = !item.ends_tile();
        if (item.ends_tile() && item.partial >= 0) {
          for (int32_t r = 0; r < item.q_rows; ++r) ++partial_seen[item.partial + r];
        }
        if (!item.ends_tile()) {
          EXPECT_EQ(item.partial, -1);
        }
        if (items == &plan.decode_items) {
          EXPECT_EQ(item.q_rows, 1);
        }
        EXPECT_LE(item.q_rows, plan.max_tile_rows);
      }
      EXPECT_FALSE(open);
    }
    for (int seen : partial_seen) EXPECT_EQ(seen, 1);
    // Each group's splits left their rows one after the other, in split order.
    std::map<std::pair<int32_t, int32_t>, const MergeGroup*> group_of;  // (kv_head, q_row)
    int32_t next = 0;
    int64_t chains = 0;
    for (const MergeGroup& g : plan.merges) {
      EXPECT_EQ(g.first_partial, next);
      EXPECT_GE(g.count, 2);
      next += g.count * g.q_rows;
      chains += g.count;
      group_of[{g.kv_head, g.q_row}] = &g;
    }
    EXPECT_EQ(next, plan.num_partial_rows);
    EXPECT_EQ(chains, plan.stats.partials);
    for (const WorkItem& item : all_items(plan)) {
      if (!item.ends_tile() || item.partial < 0) continue;
      const MergeGroup& g = *group_of.at({item.kv_head, item.q_row});
      EXPECT_EQ(item.partial, g.first_partial + item.split * g.q_rows) << "seed " << seed;
    }
  }
}

auto fields_but_slot(const WorkItem& w) {
  return std::tie(w.kv_head, w.q_row, w.q_rows, w.q_pos, w.seq_len, w.kv_begin, w.kv_end,
                  w.page_index, w.partial, w.split, w.flags);
}

// Re-seats a batch's live slots into a larger capacity: same K/V, same rows.
struct Reseated {
  std::vector<int32_t> block_table, seq_lens, query_start_len;
  AttentionInputs inputs;
};

Reseated reseat(const gen::Batch& batch, int64_t capacity, int64_t max_pages, int64_t stride) {
  Reseated r;
  r.block_table.assign(capacity * max_pages, -1);
  r.seq_lens.assign(capacity, 0);
  r.query_start_len.assign(capacity + 1, 0);
  // Live slot k goes to slot (k + 1) * stride with the same q rows; the slots
  // between them take the gaps as inactive (seq_len 0) rows.
  int64_t dst = 0, filled = 0;
  int32_t last = 0;
  for (int64_t s = 0; s < batch.spec.batch_capacity; ++s) {
    const int32_t start = batch.query_start_len[s], end = batch.query_start_len[s + 1];
    if (batch.seq_lens[s] == 0 || end == start) continue;
    dst += stride;
    for (int64_t i = filled + 1; i <= dst; ++i) r.query_start_len[i] = last;
    r.query_start_len[dst] = start;
    r.query_start_len[dst + 1] = end;
    filled = dst + 1;
    last = end;
    const int64_t pages = (batch.seq_lens[s] + batch.spec.page_size - 1) / batch.spec.page_size;
    std::copy_n(&batch.block_table[s * batch.max_pages_per_seq], pages, &r.block_table[dst * max_pages]);
    r.seq_lens[dst] = batch.seq_lens[s];
  }
  for (int64_t i = filled + 1; i <= capacity; ++i) r.query_start_len[i] = last;
  r.inputs = batch.inputs();
  r.inputs.block_table = TensorView::contiguous(r.block_table.data(), DType::kI32, {capacity, max_pages});
  r.inputs.seq_lens = TensorView::contiguous(r.seq_lens.data(), DType::kI32, {capacity});
  r.inputs.query_start_len = TensorView::contiguous(r.query_start_len.data(), DType::kI32, {capacity + 1});
  return r;
}

TEST(Plan, CapacityDoesNotChangeTheItems) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    gen::BatchSpec spec = random_spec(seed);
    const gen::Batch batch = gen::generate(spec);
    const Reseated small = reseat(batch, 8, 64, 1);
    const Reseated large = reseat(batch, 4096, 4096, 500);
    Plan a, b;
    ASSERT_TRUE(make_plan(small.inputs, spec.options, &a).ok());
    ASSERT_TRUE(make_plan(large.inputs, spec.options, &b).ok());
    ASSERT_EQ(a.decode_items.size(), b.decode_items.size());
    ASSERT_EQ(a.prefill_items.size(), b.prefill_items.size());
    const std::vector<WorkItem> ia = all_items(a), ib = all_items(b);
    for (size_t i = 0; i < ia.size(); ++i) {
      EXPECT_EQ(ia[i].slot * 500, ib[i].slot) << "seed " << seed;
      EXPECT_EQ(fields_but_slot(ia[i]), fields_but_slot(ib[i])) << "seed " << seed << " item " << i;
    }
    EXPECT_EQ(a.pages, b.pages);
    PlanStats sa = a.stats, sb = b.stats;
    EXPECT_EQ(sb.capacity_kv_tokens, int64_t{batch.num_tokens} * 4096 * spec.page_size);
    sa.batch_capacity = sb.batch_capacity = 0;
    sa.capacity_kv_tokens = sb.capacity_kv_tokens = 0;
    sa.useful_ratio = sb.useful_ratio = 0;
    EXPECT_EQ(0, std::memcmp(&sa, &sb, sizeof(PlanStats)));
  }
}

TEST(Plan, SplitsDependOnlyOnTheSequence) {
  gen::BatchSpec spec;
  spec.slots = {{1, 5000}};
  spec.slot_positions = {0};
  spec.batch_capacity = 1;
  const gen::Batch alone = gen::generate(spec);
  spec.slots = {{40, 100}, {1, 5000}, {1, 70}};
  spec.slot_positions = {0, 1, 2};
  spec.batch_capacity = 3;
  const gen::Batch crowd = gen::generate(spec);
  const Plan a = plan_of(alone, {}), b = plan_of(crowd, {});
  std::vector<std::pair<int32_t, int32_t>> ra, rb;
  for (const WorkItem& item : a.decode_items) ra.emplace_back(item.kv_begin, item.kv_end);
  for (const WorkItem& item : b.decode_items) {
    if (item.slot == 1) rb.emplace_back(item.kv_begin, item.kv_end);
  }
  EXPECT_EQ(ra, rb);
  EXPECT_GT(a.num_partial_rows, 0);
}

// A slot of T prefill tiles splits its keys at multiples of T x split_tokens,
// so its chains number about as many as a decode row's at the same context.
TEST(Plan, PrefillTilesSplitAtTheirTileCountTimesTheSplit) {
  gen::BatchSpec spec;
  spec.heads_per_kv = 8;
  spec.slots = {{1, 9000}, {16, 9000}, {40, 9000}, {300, 9000}};
  spec.slot_positions = {0, 1, 2, 3};
  spec.batch_capacity = 4;
  const gen::Batch batch = gen::generate(spec);
  PlanConfig config;
  config.q_tile_rows = 16;  // the tile counts below, whatever the default
  const Plan plan = plan_of(batch, config);
  const int64_t rows = plan.config.q_tile_rows;
  const std::map<int32_t, int64_t> tiles = {{0, 1}, {1, 1}, {2, 3}, {3, (300 + rows - 1) / rows}};
  std::map<int32_t, int64_t> splits_seen;
  for (const WorkItem& item : all_items(plan)) {
    const int64_t split = plan.config.split_tokens * tiles.at(item.slot);
    if (item.starts_tile() && item.split > 0) {
      EXPECT_EQ(item.kv_begin % split, 0) << "slot " << item.slot << " split " << item.split;
    }
    // No chain crosses a multiple of its slot's split length.
    EXPECT_EQ(item.kv_begin / split, (item.kv_end - 1) / split) << "slot " << item.slot;
    splits_seen[item.slot] = std::max<int64_t>(splits_seen[item.slot], item.split + 1);
  }
  EXPECT_EQ(splits_seen[0], 9001 / plan.config.split_tokens + 1);  // the decode row
  EXPECT_GT(splits_seen[2], 1);                                    // 3 tiles still split
  EXPECT_EQ(splits_seen[3], 1);  // 19 tiles: 19 x 2048 keys > 9300, no split
}

// The CPU default cuts each prefill slot by its own length: slots that fill
// 8 tiles of 512 lanes get them, shorter ones 256-lane tiles, whatever else
// is in the batch; sizes given explicitly, and the cuda sizes, apply to all.
TEST(Plan, LongPromptsGetTallerTilesByTheirOwnLength) {
  gen::BatchSpec spec;
  spec.heads_per_kv = 4;  // tall from 8 x 512 / 4 = 1024 rows
  spec.slots = {{1023, 0}, {1024, 0}, {1, 500}, {1500, 300}};
  spec.slot_positions = {0, 1, 2, 3};
  spec.batch_capacity = 4;
  const gen::Batch batch = gen::generate(spec);
  const int32_t short_rows = heuristics::q_tile_rows(4);
  const int32_t tall_rows = heuristics::slot_q_tile_rows(4, 1024);
  EXPECT_EQ(short_rows, 64);
  EXPECT_EQ(tall_rows, 128);
  EXPECT_EQ(heuristics::slot_q_tile_rows(4, 1023), short_rows);
  // The rows of each slot's tiles, in the order they appear.
  auto tile_rows = [](const Plan& plan) {
    std::map<int32_t, std::vector<int32_t>> rows;
    for (const WorkItem& item : plan.prefill_items) {
      if (item.starts_tile() && item.kv_head == 0 && item.split == 0) {
        rows[item.slot].push_back(item.q_rows);
      }
    }
    return rows;
  };
  auto cut = [](int32_t q_len, int32_t tile) {
    std::vector<int32_t> rows;
    for (int32_t a = 0; a < q_len; a += tile) rows.push_back(std::min(tile, q_len - a));
    return rows;
  };
  const Plan plan = plan_of(batch, {});
  EXPECT_EQ(plan.config.q_tile_rows, short_rows);
  EXPECT_EQ(plan.max_tile_rows, tall_rows);
  const auto rows = tile_rows(plan);
  EXPECT_EQ(rows.at(0), cut(1023, short_rows));
  EXPECT_EQ(rows.at(1), cut(1024, tall_rows));
  EXPECT_EQ(rows.at(3), cut(1500, tall_rows));
  EXPECT_EQ(rows.count(2), 0u);  // the decode row
  // The same prompt alone is cut the same way.
  gen::BatchSpec alone = spec;
  alone.slots = {{1500, 300}};
  alone.slot_positions = {0};
  alone.batch_capacity = 1;
  EXPECT_EQ(tile_rows(plan_of(gen::generate(alone), {})).at(0), cut(1500, tall_rows));
  // An explicit size cuts every slot alike.
  PlanConfig fixed;
  fixed.q_tile_rows = 100;
  const auto fixed_rows = tile_rows(plan_of(batch, fixed));
  EXPECT_EQ(fixed_rows.at(0), cut(1023, 100));
  EXPECT_EQ(fixed_rows.at(1), cut(1024, 100));
  EXPECT_EQ(fixed_rows.at(3), cut(1500, 100));
}

// The partial rows of a long prompt chunk stay within one tile's rows per
// split_tokens of context plus twice the chunk's rows (a tile's keys straddle
// at most one more split boundary than their length needs), however many
// tiles the chunk has. With every tile split at split_tokens, this chunk would
// need 40 tiles x 32 rows x 50 splits = 64000 rows.
TEST(Plan, PartialsOfALongChunkStayAboutOneTilePerSplit) {
  gen::BatchSpec spec;
  spec.heads_per_kv = 4;
  spec.num_kv_heads = 1;
  spec.page_size = 64;
  spec.slots = {{1280, 100000}};  // 40 tiles of 32 rows
  spec.slot_positions = {0};
  spec.batch_capacity = 1;
  const gen::Batch batch = gen::generate(spec);
  PlanConfig config;
  config.q_tile_rows = 32;
  const Plan plan = plan_of(batch, config);
  const int64_t rows = plan.config.q_tile_rows;
  const int64_t seq_len = 100000 + 1280;
  EXPECT_EQ(1280 / rows, 40);
  EXPECT_GT(plan.num_partial_rows, 0);
  EXPECT_LE(plan.num_partial_rows, rows * (seq_len / plan.config.split_tokens + 2) + 2 * 1280)
      << plan.num_partial_rows;
  // Every tile still streams its keys in chains that cover them exactly.
  int64_t streamed = 0;
  for (const WorkItem& item : plan.prefill_items) streamed += int64_t{item.kv_end - item.kv_begin} * item.q_rows;
  EXPECT_EQ(streamed, plan.stats.streamed_kv_tokens);
}

TEST(Plan, RejectsSizesThatBreakPages) {
  gen::BatchSpec spec;
  const gen::Batch batch = gen::generate(spec);
  Plan plan;
  Status s = make_plan(batch.inputs(), spec.options, &plan, PlanConfig{0, spec.page_size + 1, 0});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("kv_chunk_tokens = 17 must be a multiple of page_size 16"), std::string::npos)
      << s.message();
  s = make_plan(batch.inputs(), spec.options, &plan, PlanConfig{0, 32, 48});
  EXPECT_NE(s.message().find("split_tokens = 48 must be a multiple of kv_chunk_tokens 32"), std::string::npos)
      << s.message();
}

// Plan once, run per layer: a plan's run gives the one-shot call's bits on
// every host backend, layer after layer (new q and caches of the same
// shapes), and the one-shot call is itself make_plan + run.
TEST(Plan, RunOfAPlanIsTheOneShotCall) {
  for (uint64_t seed = 1; seed < 7; ++seed) {
    gen::BatchSpec spec = random_spec(seed);
    spec.lse = seed % 2 == 0;
    const gen::Batch batch = gen::generate(spec);
    // Another layer: the same metadata and shapes, q rotated by one row.
    gen::Batch layer2 = batch;
    std::rotate(layer2.q.begin(), layer2.q.begin() + layer2.q.size() / batch.num_tokens,
                layer2.q.end());
    Plan plan;
    ASSERT_TRUE(make_plan(batch.inputs(), spec.options, &plan).ok());
    EXPECT_EQ(plan.backend, Backend::kCpu);
    for (const Backend backend : {Backend::kCpu, Backend::kSingleLoop, Backend::kReference}) {
      for (const gen::Batch* layer : {&batch, static_cast<const gen::Batch*>(&layer2)}) {
        const AttentionInputs inputs = layer->inputs();
        Outputs planned = make_outputs(*layer), once = make_outputs(*layer);
        const Status s = run(plan, inputs, planned.views, RunConfig{backend, 2});
        ASSERT_TRUE(s.ok()) << s.message();
        ASSERT_TRUE(attention(inputs, spec.options, once.views, RunConfig{backend, 2}).ok());
        EXPECT_EQ(planned.out, once.out) << "seed " << seed << " " << backend_name(backend);
        EXPECT_EQ(std::memcmp(planned.lse.data(), once.lse.data(), once.lse.size() * 4), 0);
      }
    }
  }
}

TEST(Plan, RunRefusesTensorsOfOtherShapesAndWritesNothing) {
  const gen::BatchSpec spec = random_spec(3);
  const gen::Batch batch = gen::generate(spec);
  Plan plan;
  ASSERT_TRUE(make_plan(batch.inputs(), spec.options, &plan).ok());
  AttentionInputs inputs = batch.inputs();
  inputs.q.shape[0] -= 1;  // fewer token rows than planned
  Outputs o = make_outputs(batch);
  o.views.out.shape[0] -= 1;
  const Status s = run(plan, inputs, o.views);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("q.shape[0] (num_tokens) = " + std::to_string(inputs.q.shape[0]) +
                             " but the plan was made for " +
                             std::to_string(batch.inputs().q.shape[0])),
            std::string::npos)
      << s.message();
  EXPECT_EQ(o.out, batch.make_out());
}

// A plan carries its backend's sizes: one made for cuda (explicitly, or by
// kAuto for device tensors) has the cuda backend's tiles and chunks, so plan
// runs and one-shot calls on the GPU cut the work alike.
TEST(Plan, APlanForCudaHasTheCudaSizes) {
  const gen::BatchSpec spec = random_spec(4);
  const gen::Batch batch = gen::generate(spec);
  Plan plan;
  ASSERT_TRUE(make_plan(batch.inputs(), spec.options, &plan, {}, Backend::kCuda).ok());
  EXPECT_EQ(plan.backend, Backend::kCuda);
  EXPECT_EQ(plan.config.q_tile_rows, heuristics::cuda_q_tile_rows(spec.heads_per_kv));
  EXPECT_EQ(plan.config.kv_chunk_tokens, heuristics::cuda_kv_chunk_tokens(spec.page_size));
  EXPECT_EQ(plan.config.split_tokens, heuristics::cuda_split_tokens(spec.page_size));
  // Sizes given explicitly still win.
  ASSERT_TRUE(make_plan(batch.inputs(), spec.options, &plan, PlanConfig{5, 0, 0},
                        Backend::kCuda).ok());
  EXPECT_EQ(plan.config.q_tile_rows, 5);
  EXPECT_EQ(plan.config.kv_chunk_tokens, heuristics::cuda_kv_chunk_tokens(spec.page_size));
  // A given chunk sets the default split, as on the CPU.
  const int32_t chunk = 3 * 256;
  ASSERT_TRUE(make_plan(batch.inputs(), spec.options, &plan, PlanConfig{0, chunk, 0},
                        Backend::kCuda).ok());
  EXPECT_EQ(plan.config.split_tokens, heuristics::split_tokens(chunk));
}

}  // namespace
}  // namespace rpa
