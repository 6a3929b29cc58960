// The plan: a ragged batch as one flat list of work items (docs/contract.md §4).
//
// An item is one (slot, kv_head, Q tile, K/V chunk). Items that share one
// online-softmax state form a chain: the first item of a chain starts the tile
// (reset the state), the last ends it (flush). Chains are contiguous in the item
// list, so the whole plan runs as ONE loop over items with loop-carried state.
// A long visible K/V range is cut into splits at absolute key positions that are
// multiples of the slot's split length (never depending on the rest of the
// batch); each split is its own chain whose flush goes to partial rows, and a
// merge group combines a tile's partials in split order afterwards.
//
// A slot whose query rows make T tiles splits at multiples of T × split_tokens:
// its chains then number about as many as a decode row's at the same context
// (enough to keep the cores busy), and its partials hold about one tile's rows
// per split_tokens of context, however long the prompt chunk. (Splitting
// every tile of an 8k-token chunk at 2048 keys would need gigabytes of
// partials at a 120k context, for parallelism its 256 tiles already have.)
#pragma once

#include <cstdint>
#include <vector>

#include "rpa/attention.h"

namespace rpa {

struct PlanConfig {
  int32_t q_tile_rows = 0;      // query rows per prefill tile; 0 = heuristic (per slot on the CPU)
  int32_t kv_chunk_tokens = 0;  // keys per item; 0 = heuristic (a multiple of page_size)
  int32_t split_tokens = 0;     // keys per split chain of a one-tile slot; 0 = heuristic (a multiple of kv_chunk_tokens)
};

enum ItemFlags : uint8_t {
  kStartsTile = 1,  // reset the online-softmax state before this item
  kEndsTile = 2,    // flush the state after this item (to out, or to `partial`)
};

struct WorkItem {
  int32_t slot = 0;
  int32_t kv_head = 0;
  int32_t q_row = 0;     // first token row of the tile in q / out
  int32_t q_rows = 0;    // rows in the tile (1 for decode); each carries heads_per_kv heads
  int32_t q_pos = 0;     // absolute position of the tile's first row (context_len + offset)
  int32_t seq_len = 0;   // keys of the slot: no row sees past it
  int32_t kv_begin = 0;  // this item streams keys [kv_begin, kv_end)
  int32_t kv_end = 0;
  int32_t page_index = 0;  // index into Plan::pages of the page holding kv_begin
  int32_t partial = -1;    // on the chain's last item: -1 = flush to out, else its first partial row
  int32_t split = 0;       // index of the chain within its tile
  uint8_t flags = 0;

  bool starts_tile() const { return (flags & kStartsTile) != 0; }
  bool ends_tile() const { return (flags & kEndsTile) != 0; }
};

// A tile whose K/V range was split: its `count` splits, in split order, are
// merged and written to out rows [q_row, q_row + q_rows) of kv_head. Split j
// left its rows at partial rows first_partial + j * q_rows, onward.
struct MergeGroup {
  int32_t slot = 0;
  int32_t kv_head = 0;
  int32_t q_row = 0;
  int32_t q_rows = 0;
  int32_t first_partial = 0;
  int32_t count = 0;
};

// A chain: items [first_item, first_item + items) of the decode or the
// prefill list.
struct ChainRef {
  int32_t first_item = 0;
  int32_t items = 0;
};

// What one CPU thread runs start to end: the decode chains of one query row
// and split for every kv head (they read the same keys of the same pages, and
// read together each page streams contiguously), or one prefill chain.
// Every chain keeps its own state, so grouping changes no bit of any result.
struct PlanTask {
  int32_t first_chain = 0;  // Plan::task_chains [first_chain, first_chain + chains)
  int32_t chains = 0;
  bool decode = false;
  int64_t cost = 0;  // a relative time estimate, for longest-first scheduling
};

struct PlanStats {
  int64_t batch_capacity = 0;
  int64_t live_slots = 0;
  int64_t decode_rows = 0;   // live query rows of slots with q_len == 1
  int64_t prefill_rows = 0;  // live query rows of slots with q_len > 1
  int64_t items = 0;
  int64_t decode_items = 0;
  int64_t prefill_items = 0;
  int64_t chains = 0;
  int64_t partials = 0;             // split chains (each flushes q_rows partial rows)
  int64_t live_pages = 0;           // Σ over live slots of their live logical pages
  int64_t visible_kv_tokens = 0;    // Σ over live query rows of the keys the row sees
  int64_t streamed_kv_tokens = 0;   // Σ over tiles of q_rows × the tile's key range (one kv head)
  int64_t capacity_kv_tokens = 0;   // num_tokens × max_pages_per_seq × page_size
  double useful_ratio = 0.0;        // visible / capacity
};

struct Plan {
  int64_t num_kv_heads = 0;
  int64_t heads_per_kv = 0;
  int64_t head_dim = 0;
  int64_t page_size = 0;
  int64_t num_tokens = 0;      // q's rows, as planned
  int64_t num_pages = 0;       // the caches' pages, as planned
  int64_t batch_capacity = 0;  // block_table's rows, as planned
  AttentionOptions options;           // the options it was made for (scale resolved)
  Backend backend = Backend::kCpu;    // the backend whose sizes it has (never kAuto)
  PlanConfig config;  // the resolved sizes, never 0 (q_tile_rows: a short slot's on the CPU default)

  std::vector<WorkItem> decode_items;   // q_rows == 1
  std::vector<WorkItem> prefill_items;  // q_rows >= 1 tiles of slots with q_len > 1
  std::vector<int32_t> pages;           // physical pages, in the order items read them
  std::vector<MergeGroup> merges;
  // The chains of each list in item order (executors that run one chain per
  // worker, cuda's).
  std::vector<ChainRef> decode_chains;
  std::vector<ChainRef> prefill_chains;
  // The same chains grouped into tasks (executors that run one task per
  // worker, the cpu's): decode chains by (query row, split, kv head), then
  // prefill chains; the tasks longest first, ties in chain order.
  std::vector<ChainRef> task_chains;
  std::vector<PlanTask> tasks;
  int32_t max_task_chains = 0;
  int32_t num_partial_rows = 0;
  int32_t max_tile_rows = 0;  // the most q_rows of any item
  PlanStats stats;

  // Partial row p starts at float p * partial_row_floats() of the backend's
  // workspace, and holds one record of (head_dim + 2) floats per head: m, l,
  // then the unnormalized o[head_dim]. Row r, head g of a chain whose
  // `partial` is p is record (r * heads_per_kv + g) from row p on.
  int64_t partial_record_floats() const { return head_dim + 2; }
  int64_t partial_row_floats() const { return heads_per_kv * partial_record_floats(); }
};

// Plans a validated call for `backend` (kAuto: the one attention() would
// pick for these tensors), with that backend's sizes wherever `config`
// leaves 0. Cost O(batch_capacity + items).
Status make_plan(const AttentionInputs& inputs, const AttentionOptions& options, Plan* plan,
                 const PlanConfig& config = {}, Backend backend = Backend::kAuto);

// Runs `plan` on one layer's tensors: plan once per batch step, run once per
// layer. `inputs` holds this layer's q, k_cache, v_cache (the planned shapes),
// sinks and scales, and the block_table, seq_lens and query_start_len the plan
// was made from: make_plan checked those, and they are not read or checked
// again (only the O(1) checks of shapes, dtypes and placement run).
// `config.backend` kAuto runs the plan's backend. The one-shot attention()
// is make_plan + run. Writes nothing on error.
Status run(const Plan& plan, const AttentionInputs& inputs, const AttentionOutputs& outputs,
           const RunConfig& config = {});

// The bytes of caller-owned workspace (RunConfig::workspace) with which
// run(plan, ..., config) allocates nothing: the cpu backend's chain lists,
// split-KV partials and per-thread scratch, for config.threads (0 = as many
// as OpenMP would use now). 0 for the other backends, which do not take one.
int64_t workspace_bytes(const Plan& plan, const RunConfig& config = {});

}  // namespace rpa
