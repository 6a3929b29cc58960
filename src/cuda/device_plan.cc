#include "cuda/device_plan.h"

#include <cstring>

namespace rpa::cuda {
namespace {

size_t align16(size_t n) { return (n + 15) & ~size_t{15}; }

// The plan's chains of one list as their first items, with the list's end as
// the last entry: chain c is items [starts[c], starts[c + 1]).
std::vector<int32_t> chain_starts(const std::vector<ChainRef>& chains, size_t items) {
  std::vector<int32_t> starts;
  starts.reserve(chains.size() + 1);
  for (const ChainRef& chain : chains) starts.push_back(chain.first_item);
  starts.push_back(static_cast<int32_t>(items));
  return starts;
}

template <typename T>
size_t reserve(size_t* cursor, size_t count) {
  const size_t at = *cursor;
  *cursor = align16(at + count * sizeof(T));
  return at;
}

template <typename T>
void put(std::vector<std::byte>& image, size_t at, const T* data, size_t count) {
  if (count > 0) std::memcpy(image.data() + at, data, count * sizeof(T));
}

// The prefill chains as (first item, end item) pairs, costliest first: the
// order of the plan's tasks (tasks.cc: packed rows x keys, longest first),
// whose prefill tasks are one chain each. Under a causal mask a prompt's
// last tiles read the most keys, and starting them first keeps them off the
// tail of the grid.
std::vector<int32_t> prefill_chain_ranges(const Plan& plan) {
  std::vector<int32_t> ranges;
  ranges.reserve(2 * plan.prefill_chains.size());
  for (const PlanTask& task : plan.tasks) {
    if (task.decode) continue;
    const ChainRef& chain = plan.task_chains[task.first_chain];
    ranges.push_back(chain.first_item);
    ranges.push_back(chain.first_item + chain.items);
  }
  return ranges;
}

}  // namespace

PackedPlan pack_plan(const Problem& problem, const Plan& plan) {
  PackedPlan packed;
  const std::vector<int32_t> decode_chains =
      chain_starts(plan.decode_chains, plan.decode_items.size());
  const std::vector<int32_t> prefill_chains = prefill_chain_ranges(plan);
  packed.num_decode_chains = static_cast<int32_t>(decode_chains.size()) - 1;
  packed.num_prefill_chains = static_cast<int32_t>(plan.prefill_chains.size());

  std::vector<float> k_scale, v_scale;
  packed.has_scales = problem.quantized_kv();
  if (packed.has_scales) {
    for (int64_t h = 0; h < problem.num_kv_heads; ++h) {
      k_scale.push_back(problem.k_scale_of(h));
      v_scale.push_back(problem.v_scale_of(h));
    }
  }

  size_t cursor = 0;
  packed.decode_items = reserve<WorkItem>(&cursor, plan.decode_items.size());
  packed.decode_chains = reserve<int32_t>(&cursor, decode_chains.size());
  packed.prefill_items = reserve<WorkItem>(&cursor, plan.prefill_items.size());
  packed.prefill_chains = reserve<int32_t>(&cursor, prefill_chains.size());
  packed.pages = reserve<int32_t>(&cursor, plan.pages.size());
  packed.merges = reserve<MergeGroup>(&cursor, plan.merges.size());
  packed.k_scale = reserve<float>(&cursor, k_scale.size());
  packed.v_scale = reserve<float>(&cursor, v_scale.size());
  packed.partials = cursor;
  packed.image.resize(cursor);
  packed.total_bytes =
      cursor + static_cast<size_t>(plan.num_partial_rows) * plan.partial_row_floats() * sizeof(float);

  put(packed.image, packed.decode_items, plan.decode_items.data(), plan.decode_items.size());
  put(packed.image, packed.decode_chains, decode_chains.data(), decode_chains.size());
  put(packed.image, packed.prefill_items, plan.prefill_items.data(), plan.prefill_items.size());
  put(packed.image, packed.prefill_chains, prefill_chains.data(), prefill_chains.size());
  put(packed.image, packed.pages, plan.pages.data(), plan.pages.size());
  put(packed.image, packed.merges, plan.merges.data(), plan.merges.size());
  put(packed.image, packed.k_scale, k_scale.data(), k_scale.size());
  put(packed.image, packed.v_scale, v_scale.data(), v_scale.size());
  return packed;
}

void bind_plan(const PackedPlan& packed, const Plan& plan, std::byte* device, KernelArgs* args) {
  args->decode_items = reinterpret_cast<const WorkItem*>(device + packed.decode_items);
  args->decode_chains = reinterpret_cast<const int32_t*>(device + packed.decode_chains);
  args->num_decode_chains = packed.num_decode_chains;
  args->prefill_items = reinterpret_cast<const WorkItem*>(device + packed.prefill_items);
  args->prefill_chains = reinterpret_cast<const int32_t*>(device + packed.prefill_chains);
  args->num_prefill_chains = packed.num_prefill_chains;
  args->pages = reinterpret_cast<const int32_t*>(device + packed.pages);
  args->merges = reinterpret_cast<const MergeGroup*>(device + packed.merges);
  args->num_merges = static_cast<int32_t>(plan.merges.size());
  args->max_tile_rows = plan.max_tile_rows;
  args->k_scale = packed.has_scales ? reinterpret_cast<const float*>(device + packed.k_scale) : nullptr;
  args->v_scale = packed.has_scales ? reinterpret_cast<const float*>(device + packed.v_scale) : nullptr;
  args->partials = reinterpret_cast<float*>(device + packed.partials);
}

}  // namespace rpa::cuda
