// The CPU backend: Highway SIMD kernels over the plan's items, multithreaded
// with OpenMP over chains. The instruction set is dispatched once per call.
#pragma once

#include "core/problem.h"
#include "rpa/plan.h"

namespace rpa {

Status run_cpu(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
               const AttentionOutputs& outputs, int threads);

}  // namespace rpa
