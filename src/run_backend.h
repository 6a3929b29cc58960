// Dispatch of a described problem to a backend: the one place that knows which
// backends are built in. The orchestrator (attention.cc) is its one caller.
#pragma once

#include "core/problem.h"
#include "rpa/attention.h"
#include "rpa/plan.h"

namespace rpa {

// The backend `requested` names: kAuto is cuda when it is built and q is in
// device memory, else cpu.
Backend resolve_backend(Backend requested, const AttentionInputs& inputs);

// Checks, before anything reads the tensors, that they live where `backend`
// (resolved) reads them: host memory for every backend but cuda (cuda.h).
Status check_placement(Backend backend, const AttentionInputs& inputs,
                       const AttentionOutputs& outputs);

// Runs `config.backend` (resolved) with `config.threads` (0 = all) on
// `problem`, described from `inputs` and `outputs`, and `plan`, made from it
// (the reference backend does not read the plan).
Status run_backend(const RunConfig& config, const Problem& problem, const Plan& plan,
                   const AttentionInputs& inputs, const AttentionOutputs& outputs);

}  // namespace rpa
