// The reference backend: the oracle every other backend is tested against.
// Plain loops with double accumulation, written straight from docs/contract.md §1-§2 and
// independent of the plan and of every fast path.
#pragma once

#include "core/problem.h"

namespace rpa {

// Runs a described and checked problem. Writes out (and lse when present) for
// live rows only.
Status run_reference(const Problem& problem, const AttentionInputs& inputs,
                     const AttentionOutputs& outputs);

}  // namespace rpa
