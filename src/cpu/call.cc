#include "cpu/call.h"

namespace rpa::cpu {
namespace {

Strided3 strided3(const TensorView& view) {
  Strided3 t;
  t.data = view.data;
  for (int d = 0; d < 3; ++d) t.s[d] = view.strides[d];
  return t;
}

}  // namespace

void describe_call(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
                   const AttentionOutputs& outputs, Chain* chain_storage, CpuCall* call) {
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
  // task_chains lists the decode chains first, then the prefill chains.
  const size_t decode_chains = plan.decode_chains.size();
  for (size_t c = 0; c < plan.task_chains.size(); ++c) {
    const ChainRef& ref = plan.task_chains[c];
    const WorkItem* items = c < decode_chains ? plan.decode_items.data() : plan.prefill_items.data();
    chain_storage[c] = Chain{items + ref.first_item, ref.items};
  }
  call->chains = chain_storage;
}

}  // namespace rpa::cpu
