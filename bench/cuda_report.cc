#include <string>

#include "bench/report.h"

namespace rpa::bench {
namespace {

using nlohmann::json;

json gpu_json(const GpuLimits& gpu) {
  return {
      {"device", gpu.device},
      {"sm_count", gpu.sm_count},
      {"copy_gbps", gpu.copy_gbps},
      {"copy_bytes", gpu.copy_bytes},
      {"gemm_tflops", gpu.gemm_tflops},
      {"gemm_size", gpu.gemm_size},
      {"balance_flops_per_byte", gpu.balance()},
  };
}

json scenario_json(const CudaScenarioResult& s, const GpuLimits& gpu) {
  const CudaMeasured& m = s.main;
  json j = shared_json(s, "cuda", m, s.one());
  j["error"] = s.error.empty() ? json(nullptr) : json(s.error);
  if (!s.error.empty()) return j;
  const GpuRates r = gpu_rates(m.work, m.rpa.median(), gpu);
  j.update({
      {"queued_calls", m.calls},
      {"single_call_ms", ms(m.single.median())},
      {"single_call_min_ms", ms(m.single.min())},
      {"single_call_max_ms", ms(m.single.max())},
      {"single_call_samples", m.single.samples()},
      {"tflops", r.tflops},
      {"fraction_of_bandwidth", r.fraction_of_bandwidth},
      {"fraction_of_peak", r.fraction_of_peak},
      {"bound", r.bound},
      {"fraction_of_bound", r.fraction_of_bound},
      {"rel_diff_vs_cpu", m.rel_diff_vs_cpu},
      {"rel_diff_vs_cpu_1x", s.at_1x ? json(s.at_1x->rel_diff_vs_cpu) : json(nullptr)},
      {"batch", to_json(m.shape)},
  });
  return j;
}

}  // namespace

nlohmann::json to_json(const CudaReport& report) {
  json scenarios = json::array();
  for (const CudaScenarioResult& s : report.scenarios) {
    scenarios.push_back(scenario_json(s, report.gpu));
  }
  return {{"gpu", gpu_json(report.gpu)}, {"repeat", report.repeat}, {"scenarios", scenarios}};
}

void print_table(const CudaReport& report, std::FILE* out) {
  const GpuLimits& g = report.gpu;
  std::fprintf(out,
               "gpu: %s, %d SMs | copy %.0f GB/s (%.0f MiB device to device, read + write) | "
               "bf16 GEMM %d^3 %.0f TFLOP/s (cuBLAS, f32 accumulation) | balance %.0f flop/B\n",
               g.device.c_str(), g.sm_count, g.copy_gbps, g.copy_bytes / (1 << 20), g.gemm_size,
               g.gemm_tflops, g.balance());
  std::fprintf(out,
               "backend: cuda; time = per call, median of up to %d samples of `calls` calls "
               "queued on one stream (min-max); 1 call = one call on the default stream, "
               "waited for\n\n",
               report.repeat);
  std::fprintf(out, "%-16s %26s %6s %10s %8s %5s %8s %6s %11s %11s %12s %8s\n", "scenario",
               "time ms (min-max)", "calls", "1 call ms", "GB/s", "%bw", "TFLOP/s", "%peak",
               "%bound", "cap 64x/1x", "mixed/parts", "check");
  for (const CudaScenarioResult& s : report.scenarios) {
    if (!s.error.empty()) {
      std::fprintf(out, "%-16s failed: %s\n", s.name.c_str(), s.error.c_str());
      continue;
    }
    const CudaMeasured& m = s.main;
    const GpuRates r = gpu_rates(m.work, m.rpa.median(), g);
    const SharedCells cells = shared_cells(s, m, s.one(), 3);
    char bound[32];
    std::snprintf(bound, sizeof bound, "%.0f%% %s", 100 * r.fraction_of_bound, r.bound.c_str());
    std::fprintf(out, "%-16s %26s %6d %10.3f %8.0f %4.0f%% %8.1f %5.1f%% %11s %11s %12s %8.1e\n",
                 s.name.c_str(), cells.time.c_str(), m.calls, ms(m.single.median()), r.gbps,
                 100 * r.fraction_of_bandwidth, r.tflops, 100 * r.fraction_of_peak, bound,
                 cells.capacity.c_str(), cells.mixed.c_str(), m.rel_diff_vs_cpu);
  }
  std::fprintf(out,
               "\ncheck = max|cuda - cpu| / max|cpu| over the live rows (the cpu backend on the "
               "same batch); no CPU baselines run with --backend cuda: compare with torch by "
               "scripts/compare_torch_sdpa.py\n");
  for (const CudaScenarioResult& s : report.scenarios) {
    if (!s.error.empty()) continue;
    if (s.at_1x) {
      std::fprintf(out, "%-16s at 1x: %.3f ms per call [%d samples of %d], check %.1e\n",
                   s.name.c_str(), ms(s.at_1x->rpa.median()), s.at_1x->rpa.samples(),
                   s.at_1x->calls, s.at_1x->rel_diff_vs_cpu);
    }
    if (s.parts) {
      const PartTimes& p = *s.parts;
      std::fprintf(out,
                   "%-16s parts alone: decode %.3f [%d] + prefill %.3f [%d] = %.3f ms per call, "
                   "check vs whole %.1e\n",
                   s.name.c_str(), ms(p.decode.median()), p.decode.samples(),
                   ms(p.prefill.median()), p.prefill.samples(),
                   ms(p.decode.median() + p.prefill.median()), p.rel_diff_vs_whole);
    }
  }
}

}  // namespace rpa::bench
