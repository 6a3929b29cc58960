// The chains of a plan and their grouping into tasks (include/rpa/plan.h):
// decided once when the plan is made, so that executors only run them.
#pragma once

#include "rpa/plan.h"

namespace rpa {

// Fills decode_chains, prefill_chains, task_chains, tasks and max_task_chains
// from the plan's item lists. O(chains log chains).
void group_chains(Plan* plan);

}  // namespace rpa
