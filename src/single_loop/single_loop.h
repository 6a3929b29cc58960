// The single-loop executor: runs a whole plan as ONE loop over its items with
// loop-carried online-softmax state, then merges split partials. It is the
// executable proof that the plan fits a compiler without nested runtime loops.
#pragma once

#include "core/problem.h"
#include "rpa/plan.h"

namespace rpa {

Status run_single_loop(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
                       const AttentionOutputs& outputs);

}  // namespace rpa
