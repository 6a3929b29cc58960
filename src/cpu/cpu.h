// The CPU backend: Highway SIMD kernels over the plan's items, multithreaded
// with OpenMP over chains. The instruction set is dispatched once per call.
#pragma once

#include "core/problem.h"
#include "rpa/plan.h"

namespace rpa {

// `workspace` (workspace_size bytes, any alignment) is caller-owned scratch
// of at least workspace_bytes(plan, config) bytes; null = allocate per call.
Status run_cpu(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
               const AttentionOutputs& outputs, int threads, void* workspace = nullptr,
               int64_t workspace_size = 0);

namespace cpu {

// Test-only fault injection: a workspace allocation above `bytes` fails as if
// memory had run out; -1 (the default) = no limit. Process-wide.
void set_allocation_limit_for_testing(int64_t bytes);

}  // namespace cpu

}  // namespace rpa
