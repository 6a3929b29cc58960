// The CPU backend's entry. This file is compiled once per instruction set
// (Highway's foreach_target.h); run_cpu dispatches to the best one the CPU
// supports once per call, and everything below it is per-target code.

// The targets: AVX3 and AVX2 for speed, the scalar fallback for the rest.
// SSSE3 and SSE4 are left out: x86 servers without AVX2 are rare, and they
// cost 40% of this file's build time (sanitizer builds in CI included).
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4)
#endif

#include "cpu/cpu.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/ieee_denormals.h"
#include "cpu/call.h"
#include "cpu/cpu_features.h"
#include "cpu/epilogue.h"
#include "hwy/aligned_allocator.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// The per-target code, included once per target after foreach_target.h.
#include "cpu/decode-inl.h"
#include "cpu/prefill-inl.h"
#include "cpu/prefill_amx-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// Runs every task, then every merge, in one parallel region. Tasks are
// independent: each is computed start to end by one thread with its own
// scratch, so which thread runs it never changes a bit of the result.
// TQ is q's element type, T the caches'.
template <typename TQ, typename T>
Status RunTasks(const CpuCall& call, int threads) {
  const Plan& plan = *call.plan;
  const int64_t heads = plan.heads_per_kv;
  const int64_t dim = plan.head_dim;
  const int64_t bl = BlockLanes();
  const int64_t tile_lanes = (int64_t{std::max(plan.max_tile_rows, 1)} * heads + bl - 1) / bl * bl;
  const int64_t decode_heads = int64_t{call.max_task_chains} * heads;
  const int64_t per_thread = PrefillScratch::round16(std::max(
      {PrefillScratch::floats(tile_lanes, dim), DecodeScratch::floats(decode_heads, dim), dim}));
  hwy::AlignedFreeUniquePtr<float[]> scratch = hwy::AllocateAligned<float>(per_thread * threads);
  if (!scratch) return Status::Internal("cpu: cannot allocate the per-thread scratch");

  const int64_t num_tasks = static_cast<int64_t>(call.tasks.size());
  const int64_t num_merges = static_cast<int64_t>(plan.merges.size());
#pragma omp parallel num_threads(threads)
  {
    const ScopedIeeeDenormals ieee;  // on every worker, whatever its setting
    float* mine = scratch.get() + per_thread * omp_get_thread_num();
    const DecodeScratch decode = DecodeScratch::carve(mine, decode_heads, dim);
    const PrefillScratch prefill = PrefillScratch::carve(mine, tile_lanes, dim);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < num_tasks; ++t) {
      const Task& task = call.tasks[t];
      const Chain* chains = call.chains.data() + task.first_chain;
      if (task.decode) {
        RunDecodeTask<TQ, T>(call, chains, task.chains, decode);
      } else if (UsesAmx<TQ, T>(call)) {
        RunPrefillChainAmx(call, *chains, prefill);
      } else {
        RunPrefillChain<TQ, T>(call, *chains, prefill);
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < num_merges; ++g) merge_tile(call, plan.merges[g], mine);
  }
  return Status::Ok();
}

// The caches hold q's dtype (T = TQ) or fp8.
template <typename TQ>
Status RunForQ(const CpuCall& call, int threads) {
  if (call.problem->kv_dtype == DType::kF8E4M3) return RunTasks<TQ, Fp8E4M3>(call, threads);
  return RunTasks<TQ, TQ>(call, threads);
}

Status RunCpuTarget(const CpuCall& call, int threads) {
  switch (call.problem->dtype) {
    case DType::kF32:
      return RunForQ<float>(call, threads);
    case DType::kBF16:
      return RunForQ<hwy::bfloat16_t>(call, threads);
    case DType::kF16:
      return RunForQ<hwy::float16_t>(call, threads);
    default:
      return Status::Unsupported("cpu: q dtype must be f32, bf16 or f16");
  }
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rpa {
namespace cpu {
HWY_EXPORT(RunCpuTarget);
}  // namespace cpu

Status run_cpu(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
               const AttentionOutputs& outputs, int threads) {
  cpu::CpuCall call;
  cpu::describe_call(problem, plan, inputs, outputs, &call);
  const bool bf16 = problem.dtype == DType::kBF16 && problem.kv_dtype == DType::kBF16;
  call.amx = bf16 && cpu::amx_enabled();
  call.bf16_dot = bf16 && !call.amx && cpu::has_avx512_bf16();
  if (call.tasks.empty()) return Status::Ok();
  hwy::AlignedFreeUniquePtr<float[]> partials;
  if (plan.num_partial_rows > 0) {
    partials = hwy::AllocateAligned<float>(plan.num_partial_rows * plan.partial_row_floats());
    if (!partials) return Status::Internal("cpu: cannot allocate the split-KV partials");
    call.partials = partials.get();
  }
  // More threads than tasks would only allocate idle scratch.
  const int64_t wanted = threads > 0 ? threads : omp_get_max_threads();
  const int used = static_cast<int>(std::clamp<int64_t>(wanted, 1, call.tasks.size()));
  return HWY_DYNAMIC_DISPATCH(cpu::RunCpuTarget)(call, used);
}

}  // namespace rpa
#endif  // HWY_ONCE
