#include "cpu/call.h"

#include <algorithm>

namespace rpa::cpu {
namespace {

Strided3 strided3(const TensorView& view) {
  Strided3 t;
  t.data = view.data;
  for (int d = 0; d < 3; ++d) t.s[d] = view.strides[d];
  return t;
}

// A decode key costs about as much as eight packed query rows of a prefill tile
// against it: decode streams each K/V byte once from DRAM at a few bytes per
// cycle, prefill spends 4 * head_dim flops per (row, key) from cache.
constexpr int64_t kDecodeRowWeight = 8;

std::vector<Chain> split_chains(const std::vector<WorkItem>& items) {
  std::vector<Chain> chains;
  Chain chain;
  for (const WorkItem& item : items) {
    if (item.starts_tile()) chain = Chain{&item, 0};
    ++chain.count;
    if (item.ends_tile()) chains.push_back(chain);
  }
  return chains;
}

int64_t chain_keys(const Chain& chain) {
  int64_t keys = 0;
  for (int32_t i = 0; i < chain.count; ++i) keys += chain.items[i].kv_end - chain.items[i].kv_begin;
  return keys;
}

// Whether two chains read the same keys of the same slot in the same items.
bool same_keys(const Chain& a, const Chain& b) {
  if (a.items[0].slot != b.items[0].slot || a.items[0].q_row != b.items[0].q_row ||
      a.count != b.count) {
    return false;
  }
  for (int32_t i = 0; i < a.count; ++i) {
    if (a.items[i].kv_begin != b.items[i].kv_begin || a.items[i].kv_end != b.items[i].kv_end) {
      return false;
    }
  }
  return true;
}

// Decode chains, ordered by (query row, split, kv head), become one task per
// run of chains that read the same keys.
void add_decode_tasks(const std::vector<WorkItem>& items, CpuCall* call) {
  std::vector<Chain> chains = split_chains(items);
  std::stable_sort(chains.begin(), chains.end(), [](const Chain& a, const Chain& b) {
    const WorkItem& x = a.items[0];
    const WorkItem& y = b.items[0];
    if (x.q_row != y.q_row) return x.q_row < y.q_row;
    if (x.split != y.split) return x.split < y.split;
    return x.kv_head < y.kv_head;
  });
  for (const Chain& chain : chains) {
    const int32_t index = static_cast<int32_t>(call->chains.size());
    if (call->tasks.empty() || !call->tasks.back().decode ||
        !same_keys(call->chains[call->tasks.back().first_chain], chain)) {
      call->tasks.push_back(Task{index, 0, true, 0});
    }
    Task& task = call->tasks.back();
    ++task.chains;
    task.cost += kDecodeRowWeight * chain_keys(chain);
    call->chains.push_back(chain);
  }
}

void add_prefill_tasks(const std::vector<WorkItem>& items, int64_t heads_per_kv, CpuCall* call) {
  for (const Chain& chain : split_chains(items)) {
    const int64_t lanes = int64_t{chain.items[0].q_rows} * heads_per_kv;
    call->tasks.push_back(
        Task{static_cast<int32_t>(call->chains.size()), 1, false, lanes * chain_keys(chain)});
    call->chains.push_back(chain);
  }
}

}  // namespace

void describe_call(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
                   const AttentionOutputs& outputs, CpuCall* call) {
  call->problem = &problem;
  call->plan = &plan;
  call->q = strided3(inputs.q);
  call->k_cache = strided3(inputs.k_cache);
  call->v_cache = strided3(inputs.v_cache);
  call->out = strided3(outputs.out);
  if (outputs.lse.present()) {
    call->lse = outputs.lse.as<float>();
    for (int d = 0; d < 3; ++d) call->lse_strides[d] = outputs.lse.strides[d];
  }
  call->chains.clear();
  call->tasks.clear();
  add_decode_tasks(plan.decode_items, call);
  add_prefill_tasks(plan.prefill_items, plan.heads_per_kv, call);
  call->max_task_chains = 0;
  for (const Task& task : call->tasks) {
    call->max_task_chains = std::max(call->max_task_chains, task.chains);
  }
  // Longest first, so that the dynamic schedule does not end on one long task;
  // which thread runs a task never changes its result.
  std::stable_sort(call->tasks.begin(), call->tasks.end(),
                   [](const Task& a, const Task& b) { return a.cost > b.cost; });
}

}  // namespace rpa::cpu
