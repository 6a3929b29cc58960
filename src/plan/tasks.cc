#include "plan/tasks.h"

#include <algorithm>
#include <vector>

namespace rpa {
namespace {

// A decode key costs about as much as eight packed query rows of a prefill tile
// against it: decode streams each K/V byte once from DRAM at a few bytes per
// cycle, prefill spends 4 * head_dim flops per (row, key) from cache.
constexpr int64_t kDecodeRowWeight = 8;

std::vector<ChainRef> chains_of(const std::vector<WorkItem>& items) {
  std::vector<ChainRef> chains;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].starts_tile()) chains.push_back({static_cast<int32_t>(i), 0});
    ++chains.back().items;
  }
  return chains;
}

int64_t chain_keys(const std::vector<WorkItem>& items, const ChainRef& chain) {
  int64_t keys = 0;
  for (int32_t i = chain.first_item; i < chain.first_item + chain.items; ++i) {
    keys += items[i].kv_end - items[i].kv_begin;
  }
  return keys;
}

// Whether two chains read the same keys of the same slot in the same items.
bool same_keys(const std::vector<WorkItem>& items, const ChainRef& a, const ChainRef& b) {
  const WorkItem& x = items[a.first_item];
  const WorkItem& y = items[b.first_item];
  if (x.slot != y.slot || x.q_row != y.q_row || a.items != b.items) return false;
  for (int32_t i = 0; i < a.items; ++i) {
    const WorkItem& u = items[a.first_item + i];
    const WorkItem& v = items[b.first_item + i];
    if (u.kv_begin != v.kv_begin || u.kv_end != v.kv_end) return false;
  }
  return true;
}

}  // namespace

void group_chains(Plan* plan) {
  plan->decode_chains = chains_of(plan->decode_items);
  plan->prefill_chains = chains_of(plan->prefill_items);

  // Decode chains, ordered by (query row, split, kv head), become one task per
  // run of chains that read the same keys.
  const std::vector<WorkItem>& decode = plan->decode_items;
  std::vector<ChainRef>& order = plan->task_chains;
  order = plan->decode_chains;
  std::stable_sort(order.begin(), order.end(), [&](const ChainRef& a, const ChainRef& b) {
    const WorkItem& x = decode[a.first_item];
    const WorkItem& y = decode[b.first_item];
    if (x.q_row != y.q_row) return x.q_row < y.q_row;
    if (x.split != y.split) return x.split < y.split;
    return x.kv_head < y.kv_head;
  });
  std::vector<PlanTask>& tasks = plan->tasks;
  for (size_t c = 0; c < order.size(); ++c) {
    if (tasks.empty() || !same_keys(decode, order[tasks.back().first_chain], order[c])) {
      tasks.push_back(PlanTask{static_cast<int32_t>(c), 0, true, 0});
    }
    ++tasks.back().chains;
    tasks.back().cost += kDecodeRowWeight * chain_keys(decode, order[c]);
  }
  for (const ChainRef& chain : plan->prefill_chains) {
    const int64_t lanes = int64_t{plan->prefill_items[chain.first_item].q_rows} * plan->heads_per_kv;
    tasks.push_back(PlanTask{static_cast<int32_t>(order.size()), 1, false,
                             lanes * chain_keys(plan->prefill_items, chain)});
    order.push_back(chain);
  }
  plan->max_task_chains = 0;
  for (const PlanTask& task : tasks) plan->max_task_chains = std::max(plan->max_task_chains, task.chains);
  // Longest first, so that a dynamic schedule does not end on one long task.
  std::stable_sort(tasks.begin(), tasks.end(),
                   [](const PlanTask& a, const PlanTask& b) { return a.cost > b.cost; });
}

}  // namespace rpa
