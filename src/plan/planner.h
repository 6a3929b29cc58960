// The planner: turns a checked problem into a Plan (include/rpa/plan.h).
#pragma once

#include "core/problem.h"
#include "rpa/plan.h"

namespace rpa {

// Cost O(batch_capacity + items); reads only live block_table entries. The
// plan gets `backend`'s sizes (heuristics.h) wherever `config` has 0.
Status build_plan(const Problem& problem, const PlanConfig& config, Plan* plan,
                  Backend backend = Backend::kCpu);

}  // namespace rpa
