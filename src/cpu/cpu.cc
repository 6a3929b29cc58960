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
#include <atomic>
#include <cstdint>
#include <vector>

#include "core/ieee_denormals.h"
#include "core/message.h"
#include "cpu/amx_decode_tiles.h"
#include "cpu/call.h"
#include "cpu/cpu_features.h"
#include "hwy/aligned_allocator.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// The per-target code, included once per target after foreach_target.h.
#include "cpu/decode-inl.h"
#include "cpu/decode_amx-inl.h"
#include "cpu/epilogue-inl.h"
#include "cpu/prefill-inl.h"
#include "cpu/prefill_amx-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// The lanes of the plan's widest prefill tile, in whole m-blocks of this
// target.
int64_t TileLanes(const Plan& plan) {
  const int64_t bl = BlockLanes();
  return (int64_t{std::max(plan.max_tile_rows, 1)} * plan.heads_per_kv + bl - 1) / bl * bl;
}

// The floats of one thread's scratch (a multiple of 16, so that every
// thread's starts aligned): this target's prefill tile, a decode task of
// `max_task_chains` kv heads (on either decode path), or a merge row.
int64_t ScratchFloats(const Plan& plan, int32_t max_task_chains) {
  const int64_t dim = plan.head_dim;
  const int64_t decode_heads = int64_t{max_task_chains} * plan.heads_per_kv;
  return PrefillScratch::round16(std::max(
      {PrefillScratch::floats(TileLanes(plan), dim), DecodeScratch::floats(decode_heads, dim),
       AmxDecodeScratch::floats(max_task_chains, plan.heads_per_kv, dim), dim}));
}

// Runs every task, then every merge, in one parallel region. Tasks are
// independent: each is computed start to end by one thread with its own
// scratch, so which thread runs it never changes a bit of the result.
// TQ is q's element type, T the caches'.
template <typename TQ, typename T>
Status RunTasks(const CpuCall& call, int threads) {
  const Plan& plan = *call.plan;
  const int64_t dim = plan.head_dim;
  const int64_t tile_lanes = TileLanes(plan);
  const int64_t decode_heads = int64_t{plan.max_task_chains} * plan.heads_per_kv;
  const int64_t per_thread = call.scratch_floats;

  const int64_t num_tasks = static_cast<int64_t>(plan.tasks.size());
  const int64_t num_merges = static_cast<int64_t>(plan.merges.size());
  // Each thread's scratch, carved once for each path (they overlap: a thread
  // runs one task at a time).
  const auto run_task = [&](int64_t t, const DecodeScratch& decode,
                            const AmxDecodeScratch& amx_decode, const PrefillScratch& prefill) {
    const PlanTask& task = plan.tasks[t];
    const Chain* chains = call.chains + task.first_chain;
    if constexpr (kAmxDecodeTypes<TQ, T>) {
      if (task.decode && UsesAmxDecode<TQ, T>(call)) {
        return RunDecodeTaskAmx<T>(call, chains, task.chains, amx_decode);
      }
    }
    if (task.decode) {
      RunDecodeTask<TQ, T>(call, chains, task.chains, decode);
    } else if (UsesAmx<TQ, T>(call)) {
      RunPrefillChainAmx(call, *chains, prefill);
    } else {
      RunPrefillChain<TQ, T>(call, *chains, prefill);
    }
  };
  if (threads == 1) {
    // On the calling thread, without a parallel region: libgomp allocates a
    // new team for a one-thread region on every call, and a run with caller
    // workspace allocates nothing.
    const ScopedIeeeDenormals ieee;  // as a worker would, whatever the caller's setting
    const DecodeScratch decode = DecodeScratch::carve(call.scratch, decode_heads, dim);
    const AmxDecodeScratch amx_decode =
        AmxDecodeScratch::carve(call.scratch, plan.heads_per_kv, dim);
    const PrefillScratch prefill = PrefillScratch::carve(call.scratch, tile_lanes, dim);
    for (int64_t t = 0; t < num_tasks; ++t) run_task(t, decode, amx_decode, prefill);
    for (int64_t g = 0; g < num_merges; ++g) merge_tile(call, plan.merges[g], call.scratch);
    return Status::Ok();
  }
#pragma omp parallel num_threads(threads)
  {
    const ScopedIeeeDenormals ieee;  // on every worker, whatever its setting
    float* mine = call.scratch + per_thread * omp_get_thread_num();
    const DecodeScratch decode = DecodeScratch::carve(mine, decode_heads, dim);
    const AmxDecodeScratch amx_decode = AmxDecodeScratch::carve(mine, plan.heads_per_kv, dim);
    const PrefillScratch prefill = PrefillScratch::carve(mine, tile_lanes, dim);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < num_tasks; ++t) run_task(t, decode, amx_decode, prefill);
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
HWY_EXPORT(ScratchFloats);

namespace {

// Every region of the workspace starts on this boundary (what
// hwy::AllocateAligned gives, and what the kernels' aligned loads need); a
// caller's workspace may start anywhere, hence one boundary of slack.
constexpr int64_t kAlign = 128;
int64_t align_up(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::atomic<int64_t> allocation_limit{-1};

// The workspace of one run: the plan's task chains as item pointers, the
// split-KV partials and the per-thread scratch, all sized by the plan and the
// thread count alone.
struct Layout {
  int threads = 0;
  int64_t chain_bytes = 0;
  int64_t partial_bytes = 0;
  int64_t scratch_floats = 0;  // per thread
  int64_t bytes() const {
    return align_up(chain_bytes) + align_up(partial_bytes) +
           threads * scratch_floats * static_cast<int64_t>(sizeof(float));
  }
};

Layout layout_of(const Plan& plan, int threads) {
  Layout layout;
  // More threads than tasks would only hold idle scratch.
  const int64_t wanted = threads > 0 ? threads : omp_get_max_threads();
  const int64_t tasks = static_cast<int64_t>(plan.tasks.size());
  layout.threads = static_cast<int>(std::clamp<int64_t>(wanted, 1, std::max<int64_t>(tasks, 1)));
  layout.chain_bytes = static_cast<int64_t>(plan.task_chains.size() * sizeof(Chain));
  layout.partial_bytes = int64_t{plan.num_partial_rows} * plan.partial_row_floats() *
                         static_cast<int64_t>(sizeof(float));
  layout.scratch_floats = HWY_DYNAMIC_DISPATCH(ScratchFloats)(plan, plan.max_task_chains);
  return layout;
}

// Places the partials and the scratch after the chains at `at`.
void place_buffers(const Layout& layout, char* at, CpuCall* call) {
  at += align_up(layout.chain_bytes);
  call->partials = layout.partial_bytes > 0 ? reinterpret_cast<float*>(at) : nullptr;
  call->scratch = reinterpret_cast<float*>(at + align_up(layout.partial_bytes));
  call->scratch_floats = layout.scratch_floats;
}

char* aligned(void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<char*>((address + kAlign - 1) / kAlign * kAlign);
}

}  // namespace

void set_allocation_limit_for_testing(int64_t bytes) { allocation_limit.store(bytes); }

Status allocate_workspace(int64_t bytes, const char* what, hwy::AlignedFreeUniquePtr<char[]>* out) {
  const int64_t limit = allocation_limit.load();
  if (limit < 0 || bytes <= limit) {
    *out = hwy::AllocateAligned<char>(static_cast<size_t>(bytes));
    if (*out) return Status::Ok();
  }
  return Status::Internal(cat("cpu: out of memory: cannot allocate ", bytes, " bytes for ", what,
                              " (pass RunConfig::workspace to allocate it up front)"));
}

}  // namespace cpu

Status run_cpu(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
               const AttentionOutputs& outputs, int threads, void* workspace,
               int64_t workspace_size) {
  if (plan.tasks.empty()) return Status::Ok();
  const cpu::Layout layout = cpu::layout_of(plan, threads);
  hwy::AlignedFreeUniquePtr<char[]> owned;
  char* base = nullptr;
  if (workspace != nullptr) {
    const int64_t needed = cpu::kAlign + layout.bytes();
    if (workspace_size < needed) {
      return Status::Invalid(cat("workspace_size = ", workspace_size,
                                 " bytes is too small: this plan needs ", needed,
                                 " with threads = ", threads, " (rpa::workspace_bytes)"));
    }
    base = cpu::aligned(workspace);
  } else {
    RPA_RETURN_IF_ERROR(cpu::allocate_workspace(
        layout.bytes(), "the chain list, split-KV partials and per-thread scratch", &owned));
    base = owned.get();
  }
  cpu::CpuCall call;
  cpu::describe_call(problem, plan, inputs, outputs, reinterpret_cast<cpu::Chain*>(base), &call);
  cpu::place_buffers(layout, base, &call);
  const bool bf16 = problem.dtype == DType::kBF16 && problem.kv_dtype == DType::kBF16;
  call.amx = bf16 && cpu::amx_enabled();
  call.bf16_dot = bf16 && !call.amx && cpu::has_avx512_bf16();
  // Decode takes AMX tiles for fp8 caches too, widened to bf16 (exactly) on
  // the way: q must be bf16 already, so that the scores stay exact products.
  const bool fp8_widens =
      problem.dtype == DType::kBF16 && problem.kv_dtype == DType::kF8E4M3 && cpu::has_avx512_vbmi();
  call.amx_decode = (call.amx || (fp8_widens && cpu::amx_enabled())) &&
                    problem.heads_per_kv <= cpu::kAmxDecodeMaxHeads && problem.head_dim % 32 == 0;
  return HWY_DYNAMIC_DISPATCH(cpu::RunCpuTarget)(call, layout.threads);
}

int64_t workspace_bytes(const Plan& plan, const RunConfig& config) {
  const Backend backend = config.backend == Backend::kAuto ? plan.backend : config.backend;
  if (backend != Backend::kCpu || plan.tasks.empty()) return 0;
  return cpu::kAlign + cpu::layout_of(plan, config.threads).bytes();
}

}  // namespace rpa
#endif  // HWY_ONCE
