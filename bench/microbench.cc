// rpa_microbench: Google Benchmark cases for micro-level work. Scenario-level
// numbers, with machine limits and baselines in the same run, come from
// `rpa bench` instead (docs/benchmarks.md).
#include <benchmark/benchmark.h>

#include <map>
#include <vector>

#include "baselines/baselines.h"
#include "bench/scenarios.h"
#include "bench/workload.h"
#include "core/problem.h"
#include "rpa/plan.h"

namespace rpa::bench {
namespace {

// 3 live decode rows of 1000 keys in capacity × capacity pages per slot: the
// planner and validator must cost O(capacity + live pages), never
// O(capacity × pages). Generated once per capacity.
const gen::Batch& sparse_batch(int capacity) {
  static std::map<int, gen::Batch> cache;
  auto it = cache.find(capacity);
  if (it == cache.end())
    it = cache.emplace(capacity, gen::generate(decode_spec(3, 1000, capacity, capacity))).first;
  return it->second;
}

// 8 decode rows × 2048 keys at capacity = live: the decode-capacity workload.
const gen::Batch& decode_batch() {
  static const gen::Batch batch = gen::generate(decode_spec(8, 2048, 8));
  return batch;
}

void BM_MakePlan(benchmark::State& state) {
  const gen::Batch& batch = sparse_batch(static_cast<int>(state.range(0)));
  const AttentionInputs inputs = batch.inputs();
  Plan plan;
  for (auto _ : state) {
    const Status status = make_plan(inputs, batch.spec.options, &plan);
    if (!status.ok()) return state.SkipWithError(status.message().c_str());
    benchmark::DoNotOptimize(plan.decode_items.data());
  }
  state.counters["items"] = static_cast<double>(plan.stats.items);
}
BENCHMARK(BM_MakePlan)->ArgName("capacity")->Arg(64)->Arg(4096)->Unit(benchmark::kMicrosecond);

// describe() + check_metadata(): what RunConfig::validate = true adds to a call.
void BM_Validate(benchmark::State& state) {
  const gen::Batch& batch = sparse_batch(static_cast<int>(state.range(0)));
  const AttentionInputs inputs = batch.inputs();
  for (auto _ : state) {
    Problem problem;
    Status status = describe(inputs, batch.spec.options, nullptr, &problem);
    if (status.ok()) status = check_metadata(problem);
    if (!status.ok()) return state.SkipWithError(status.message().c_str());
    benchmark::DoNotOptimize(problem.seq_lens);
  }
}
BENCHMARK(BM_Validate)->ArgName("capacity")->Arg(64)->Arg(4096)->Unit(benchmark::kMicrosecond);

// Runs `call(inputs, outputs)` on the decode batch and reports useful bytes/s.
template <typename Call>
void run_decode(benchmark::State& state, Call call) {
  const gen::Batch& batch = decode_batch();
  const AttentionInputs inputs = batch.inputs();
  std::vector<uint8_t> out = batch.make_out();
  const AttentionOutputs outputs{batch.out_view(out), {}};
  for (auto _ : state) {
    const Status status = call(inputs, outputs);
    if (!status.ok()) return state.SkipWithError(status.message().c_str());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(measure_workload(batch).useful_bytes));
}

void BM_DecodeKernel(benchmark::State& state, Backend backend) {
  run_decode(state, [&](const AttentionInputs& in, const AttentionOutputs& out) {
    return attention(in, decode_batch().spec.options, out, RunConfig{backend, 0, true});
  });
}
BENCHMARK_CAPTURE(BM_DecodeKernel, cpu, Backend::kCpu)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_DecodeKernel, single_loop, Backend::kSingleLoop)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Times the cpu backend on `batch`, one thread, validation on; false (the
// state told why) when a call fails.
bool run_cpu_on_one_thread(benchmark::State& state, const gen::Batch& batch) {
  const AttentionInputs inputs = batch.inputs();
  std::vector<uint8_t> out = batch.make_out();
  const AttentionOutputs outputs{batch.out_view(out), {}};
  for (auto _ : state) {
    const Status status =
        attention(inputs, batch.spec.options, outputs, RunConfig{Backend::kCpu, 1, true});
    if (!status.ok()) {
      state.SkipWithError(status.message().c_str());
      return false;
    }
    benchmark::ClobberMemory();
  }
  return true;
}

// The decode kernel's compute alone: one row of 512 keys whose K/V (2 MiB in
// bf16, 1 MiB in fp8) stay in the caches between runs, on one thread. Reports
// ns per (key, kv head) as the time per item; against decode-long's DRAM time
// per (key, kv head) it says whether decode is memory- or compute-bound.
void BM_DecodeInCache(benchmark::State& state, gen::KvQuant quant) {
  static std::map<gen::KvQuant, gen::Batch> cache;
  auto it = cache.find(quant);
  if (it == cache.end()) {
    gen::BatchSpec spec = decode_spec(1, 512, 1);
    spec.kv_quant = quant;
    it = cache.emplace(quant, gen::generate(spec)).first;
  }
  const gen::Batch& batch = it->second;
  if (!run_cpu_on_one_thread(state, batch)) return;
  const int64_t pairs = int64_t{512} * batch.spec.num_kv_heads;
  state.counters["ns_per_key_head"] =
      benchmark::Counter(static_cast<double>(pairs) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK_CAPTURE(BM_DecodeInCache, kv_as_q, gen::KvQuant::kNone)->Unit(benchmark::kMicrosecond);

// The prefill kernel alone, on one thread, by CPU time (so that it reads on a
// shared machine): the `prefill` scenario's 2048-token causal prompt cut to
// its first 512 rows, bf16 (AMX tiles where usable; set RPA_CPU_AMX=0 for the
// AVX-512 path) or f32. Reports useful GFLOP/s.
void BM_PrefillKernel(benchmark::State& state, DType dtype) {
  static std::map<DType, gen::Batch> cache;
  auto it = cache.find(dtype);
  if (it == cache.end()) {
    it = cache.emplace(dtype, gen::generate(prefill_spec(512, 0, dtype))).first;
  }
  const gen::Batch& batch = it->second;
  if (!run_cpu_on_one_thread(state, batch)) return;
  const double flops = measure_workload(batch).flops;
  state.counters["gflops"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_PrefillKernel, bf16, DType::kBF16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PrefillKernel, f32, DType::kF32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DecodeInCache, fp8, gen::KvQuant::kFp8PerHead)->Unit(benchmark::kMicrosecond);

void BM_DecodeCapacityMasked(benchmark::State& state) {
  run_decode(state, [](const AttentionInputs& in, const AttentionOutputs& out) {
    return baselines::capacity_masked(in, decode_batch().spec.options, out);
  });
}
BENCHMARK(BM_DecodeCapacityMasked)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DecodeGatherDense(benchmark::State& state) {
  run_decode(state, [](const AttentionInputs& in, const AttentionOutputs& out) {
    return baselines::gather_dense(in, decode_batch().spec.options, out);
  });
}
BENCHMARK(BM_DecodeGatherDense)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace rpa::bench

BENCHMARK_MAIN();
