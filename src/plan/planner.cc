// The planner. Walks the batch once, slot by slot, and emits for every active
// slot, Q tile, kv head and split one chain of K/V-chunk items. Inactive slots
// cost one comparison; only the live block_table entries a tile can see are
// read, so planning is O(batch_capacity + items).
#include "plan/planner.h"

#include <algorithm>
#include <limits>
#include <string>

#include "core/row_mask.h"
#include "plan/heuristics.h"
#include "plan/item_decode.h"
#include "plan/tasks.h"

namespace rpa {
namespace {

// The sizes `backend` plans with where the caller gives 0 (heuristics.h); a
// given chunk splits at the CPU's multiple of it on every backend.
Status resolve_config(const Problem& problem, const PlanConfig& requested, Backend backend,
                      PlanConfig* config) {
  const int32_t page = static_cast<int32_t>(problem.page_size);
  const bool cuda = backend == Backend::kCuda;
  const int32_t tile_rows = cuda ? heuristics::cuda_q_tile_rows(problem.heads_per_kv)
                                 : heuristics::q_tile_rows(problem.heads_per_kv);
  const int32_t chunk =
      cuda ? heuristics::cuda_kv_chunk_tokens(page) : heuristics::kv_chunk_tokens(page);
  config->q_tile_rows = requested.q_tile_rows > 0 ? requested.q_tile_rows : tile_rows;
  config->kv_chunk_tokens = requested.kv_chunk_tokens > 0 ? requested.kv_chunk_tokens : chunk;
  const int32_t split = cuda && requested.kv_chunk_tokens == 0
                            ? heuristics::cuda_split_tokens(page)
                            : heuristics::split_tokens(config->kv_chunk_tokens);
  config->split_tokens = requested.split_tokens > 0 ? requested.split_tokens : split;
  if (requested.q_tile_rows < 0 || requested.kv_chunk_tokens < 0 || requested.split_tokens < 0) {
    return Status::Invalid("PlanConfig sizes must be >= 0 (0 = heuristic), got q_tile_rows " +
                           std::to_string(requested.q_tile_rows) + ", kv_chunk_tokens " +
                           std::to_string(requested.kv_chunk_tokens) + ", split_tokens " +
                           std::to_string(requested.split_tokens));
  }
  if (config->kv_chunk_tokens % page != 0) {
    return Status::Invalid("PlanConfig.kv_chunk_tokens = " + std::to_string(config->kv_chunk_tokens) +
                           " must be a multiple of page_size " + std::to_string(page));
  }
  if (config->split_tokens % config->kv_chunk_tokens != 0) {
    return Status::Invalid("PlanConfig.split_tokens = " + std::to_string(config->split_tokens) +
                           " must be a multiple of kv_chunk_tokens " +
                           std::to_string(config->kv_chunk_tokens));
  }
  return Status::Ok();
}

class Builder {
 public:
  // per_slot_tiles: the tile height is the CPU default's, chosen per slot
  // (heuristics::slot_q_tile_rows), not plan.config's.
  Builder(const Problem& problem, Plan* plan, bool per_slot_tiles)
      : problem_(problem), plan_(*plan), per_slot_tiles_(per_slot_tiles) {}

  // Emits the chains of Q tile [a, b) (relative to the slot's q_start) of slot
  // s, its keys split at multiples of `split` (plan.h).
  void add_tile(int64_t s, int64_t a, int64_t b, int64_t split) {
    const int64_t seq_len = problem_.seq_lens[s];
    const int64_t context = problem_.context_len(s);
    const int64_t page = problem_.page_size;
    // The tile's rows together see keys [lo, hi).
    const RowMask mask{plan_.options.sliding_window};
    const int64_t hi = mask.end_key(context + b - 1, seq_len);
    const int64_t lo = mask.first_key(context + a);
    const bool decode = problem_.q_len(s) == 1;

    // The tile's pages are listed once and shared by every kv head's items.
    const int64_t first_page = lo / page;
    const int64_t tile_page_index = static_cast<int64_t>(plan_.pages.size());
    const int32_t* table = problem_.pages_of(s);
    for (int64_t p = first_page; p < ceil_div(hi, page); ++p) plan_.pages.push_back(table[p]);

    const int64_t chunk = plan_.config.kv_chunk_tokens;
    const int64_t first_split = lo / split;
    const int64_t splits = (hi - 1) / split - first_split + 1;

    WorkItem item;
    item.slot = static_cast<int32_t>(s);
    item.q_row = problem_.query_start_len[s] + static_cast<int32_t>(a);
    item.q_rows = static_cast<int32_t>(b - a);
    item.q_pos = static_cast<int32_t>(context + a);
    item.seq_len = static_cast<int32_t>(seq_len);
    std::vector<WorkItem>& items = decode ? plan_.decode_items : plan_.prefill_items;

    for (int64_t h = 0; h < problem_.num_kv_heads; ++h) {
      item.kv_head = static_cast<int32_t>(h);
      if (splits > 1) {
        plan_.merges.push_back({item.slot, item.kv_head, item.q_row, item.q_rows,
                                static_cast<int32_t>(partial_rows_), static_cast<int32_t>(splits)});
      }
      for (int64_t j = 0; j < splits; ++j) {
        const int64_t split_lo = std::max(lo, (first_split + j) * split);
        const int64_t split_hi = std::min(hi, (first_split + j + 1) * split);
        item.split = static_cast<int32_t>(j);
        for (int64_t begin = split_lo; begin < split_hi;) {
          const int64_t end = std::min(split_hi, (begin / chunk + 1) * chunk);
          item.kv_begin = static_cast<int32_t>(begin);
          item.kv_end = static_cast<int32_t>(end);
          item.page_index = static_cast<int32_t>(tile_page_index + begin / page - first_page);
          item.flags = (begin == split_lo ? kStartsTile : 0) | (end == split_hi ? kEndsTile : 0);
          item.partial = -1;
          if (end == split_hi && splits > 1) {
            item.partial = static_cast<int32_t>(partial_rows_);
            partial_rows_ += item.q_rows;
            plan_.stats.partials += 1;
          }
          items.push_back(item);
          begin = end;
        }
      }
      plan_.stats.chains += splits;
    }
    // Counted per query row like visible_kv_tokens (not per kv head), so the
    // two compare: the excess is what the edge masks throw away.
    plan_.stats.streamed_kv_tokens += item.q_rows * (hi - lo);
    plan_.max_tile_rows = std::max(plan_.max_tile_rows, item.q_rows);
  }

  void add_slot(int64_t s) {
    const int64_t q_len = problem_.q_len(s);
    const int64_t context = problem_.context_len(s);
    PlanStats& stats = plan_.stats;
    stats.live_slots += 1;
    stats.live_pages += ceil_div(problem_.seq_lens[s], problem_.page_size);
    (q_len == 1 ? stats.decode_rows : stats.prefill_rows) += q_len;
    const RowMask mask{plan_.options.sliding_window};
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t pos = context + i;
      stats.visible_kv_tokens += mask.end_key(pos, problem_.seq_lens[s]) - mask.first_key(pos);
    }
    const int64_t tile = q_len == 1 ? 1
                         : per_slot_tiles_
                             ? heuristics::slot_q_tile_rows(problem_.heads_per_kv, q_len)
                             : plan_.config.q_tile_rows;
    const int64_t split = plan_.config.split_tokens * ceil_div(q_len, tile);
    for (int64_t a = 0; a < q_len; a += tile) add_tile(s, a, std::min(q_len, a + tile), split);
  }

  // Counted in 64 bits, so that a plan past int32 is refused, not wrapped.
  int64_t partial_rows() const { return partial_rows_; }

 private:
  const Problem& problem_;
  Plan& plan_;
  const bool per_slot_tiles_;
  int64_t partial_rows_ = 0;
};

}  // namespace

Status build_plan(const Problem& problem, const PlanConfig& config, Plan* plan, Backend backend) {
  *plan = Plan{};
  RPA_RETURN_IF_ERROR(resolve_config(problem, config, backend, &plan->config));
  plan->num_kv_heads = problem.num_kv_heads;
  plan->heads_per_kv = problem.heads_per_kv;
  plan->head_dim = problem.head_dim;
  plan->page_size = problem.page_size;
  plan->num_tokens = problem.num_tokens;
  plan->num_pages = problem.num_pages;
  plan->batch_capacity = problem.batch_capacity;
  plan->options = AttentionOptions{problem.scale, problem.sliding_window, problem.logit_soft_cap};
  plan->backend = backend;

  Builder builder(problem, plan, backend != Backend::kCuda && config.q_tile_rows == 0);
  for (int64_t s = 0; s < problem.batch_capacity; ++s) {
    if (problem.active(s)) builder.add_slot(s);
  }
  if (builder.partial_rows() > std::numeric_limits<int32_t>::max()) {
    const int64_t rows = builder.partial_rows();
    *plan = Plan{};
    return Status::Unsupported("the plan needs " + std::to_string(rows) +
                               " split-partial rows, more than int32 indexes: raise "
                               "PlanConfig.split_tokens");
  }
  plan->num_partial_rows = static_cast<int32_t>(builder.partial_rows());
  group_chains(plan);

  PlanStats& stats = plan->stats;
  stats.batch_capacity = problem.batch_capacity;
  stats.decode_items = static_cast<int64_t>(plan->decode_items.size());
  stats.prefill_items = static_cast<int64_t>(plan->prefill_items.size());
  stats.items = stats.decode_items + stats.prefill_items;
  stats.capacity_kv_tokens = problem.num_tokens * problem.max_pages_per_seq * problem.page_size;
  stats.useful_ratio = stats.capacity_kv_tokens > 0
                           ? static_cast<double>(stats.visible_kv_tokens) / stats.capacity_kv_tokens
                           : 0.0;
  return Status::Ok();
}

}  // namespace rpa
