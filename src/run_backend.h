// Dispatch of a described problem to a backend: the one place that knows which
// backends are built in, shared by the one-shot entry (attention.cc) and plan
// runs (capi/plan_c.cc).
#pragma once

#include "core/problem.h"
#include "rpa/attention.h"
#include "rpa/plan.h"

namespace rpa {

// Runs `backend` (kAuto = the fastest built in) with `threads` (0 = all) on
// `problem`, described from `inputs` and `outputs`. `plan` is built here when
// null and the backend needs one; a given plan must be `problem`'s.
Status run_backend(Backend backend, int threads, const Problem& problem, const Plan* plan,
                   const AttentionInputs& inputs, const AttentionOutputs& outputs);

}  // namespace rpa
