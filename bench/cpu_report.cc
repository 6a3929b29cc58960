#include <string>

#include "bench/report.h"

namespace rpa::bench {
namespace {

using nlohmann::json;

// The rates and ratios of one measured batch.
struct Rates {
  double seconds, gbps, gflops, fraction_of_bandwidth, fraction_of_peak;
  double masked_seconds, dense_seconds, speedup_masked, speedup_dense;
};

Rates rates(const Measured& m, const MachineLimits& machine, DType dtype) {
  Rates r{};
  r.seconds = m.rpa.median();
  r.gbps = m.work.useful_bytes / r.seconds * 1e-9;
  r.gflops = m.work.flops / r.seconds * 1e-9;
  r.fraction_of_bandwidth = r.gbps / machine.read_gbps;
  r.fraction_of_peak = r.gflops / machine.peak_gflops(dtype);
  r.masked_seconds = m.masked_seconds();
  r.dense_seconds = m.gather_dense.median();
  r.speedup_masked = r.masked_seconds / r.seconds;
  r.speedup_dense = r.dense_seconds / r.seconds;
  return r;
}

json scenario_json(const ScenarioResult& s, const Report& report) {
  const Measured& m = s.main;
  const Rates r = rates(m, report.machine, s.dtype);
  json j = shared_json(s, backend_name(report.backend), m, s.one());
  j.update({
      {"gflops", r.gflops},
      {"fraction_of_bandwidth", r.fraction_of_bandwidth},
      {"fraction_of_peak", r.fraction_of_peak},
      {"peak", report.machine.bf16_is_peak(s.dtype) ? "bf16" : "fma"},
      {"adjacent_limit", nullptr},
      {"adjacent_limit_rate", nullptr},
      {"fraction_of_adjacent_limit", nullptr},
      {"speedup_vs_capacity_masked", r.speedup_masked},
      {"speedup_vs_gather_dense", r.speedup_dense},
      {"capacity_masked_ms", ms(r.masked_seconds)},
      {"capacity_masked_samples", m.capacity_masked.samples()},
      {"capacity_masked_timed_fraction", m.masked_fraction},
      {"gather_dense_ms", ms(r.dense_seconds)},
      {"gather_dense_samples", m.gather_dense.samples()},
      {"rel_diff_vs_gather_dense", m.rel_diff_vs_gather_dense},
      {"capacity_masked_invariance", nullptr},
      {"gather_dense_invariance", nullptr},
  });
  if (!m.probe_limit.empty()) {
    j["adjacent_limit"] = m.probe_limit;
    j["adjacent_limit_rate"] = m.probe_rate() * 1e-9;
    j["fraction_of_adjacent_limit"] = m.fraction_of_probe();
  }
  if (s.at_1x) {
    j["capacity_masked_invariance"] = r.masked_seconds / s.at_1x->masked_seconds();
    j["gather_dense_invariance"] = r.dense_seconds / s.at_1x->gather_dense.median();
  }
  return j;
}

}  // namespace

nlohmann::json sweep_json(const Report& report) {
  json points = json::array();
  for (const SweepResult& p : report.sweep) {
    const Measured& m = p.measured;
    const double bytes = m.work.useful_bytes * 1e-9;
    points.push_back({
        {"sweep", p.sweep},
        {"x", p.x},
        {"rpa_ms", ms(m.rpa.median())},
        {"capacity_masked_ms", ms(m.masked_seconds())},
        {"capacity_masked_timed_fraction", m.masked_fraction},
        {"gather_dense_ms", ms(m.gather_dense.median())},
        {"rpa_gbps", bytes / m.rpa.median()},
        {"capacity_masked_gbps", bytes / m.masked_seconds()},
        {"gather_dense_gbps", bytes / m.gather_dense.median()},
    });
  }
  return points;
}

nlohmann::json to_json(const Report& report) {
  const MachineLimits& m = report.machine;
  json scenarios = json::array();
  for (const ScenarioResult& s : report.scenarios) scenarios.push_back(scenario_json(s, report));
  json machine = {{"read_gbps", m.read_gbps},     {"fma_gflops", m.fma_gflops},
                  {"bf16_gflops", m.bf16_gflops}, {"sgemm_gflops", m.sgemm_gflops},
                  {"threads", m.threads},         {"simd_target", m.simd_target},
                  {"bf16_method", m.bf16_method}, {"read_bytes", m.read_bytes},
                  {"sgemm_size", kSgemmSize}};
  machine.update(to_json(m.cpu));
  json j = {{"machine", machine}, {"scenarios", scenarios}};
  if (!report.sweep.empty()) j["sweep"] = sweep_json(report);
  return j;
}

void print_table(const Report& report, std::FILE* out) {
  const MachineLimits& m = report.machine;
  std::fprintf(out, "cpu: %s\n", describe_line(m.cpu).c_str());
  std::fprintf(out,
               "machine: %d threads, %s | DRAM read %.1f GB/s | fp32 FMA %.0f GFLOP/s | "
               "bf16 dot %.0f GFLOP/s (%s) | sgemm %d^3 %.0f GFLOP/s\n",
               m.threads, m.simd_target.c_str(), m.read_gbps, m.fma_gflops, m.bf16_gflops,
               m.bf16_method == "amx"         ? "AMX-BF16 tiles"
               : m.bf16_method == "vdpbf16ps" ? "AVX512_BF16 vdpbf16ps"
                                              : "widening bf16->f32 + FMA, no AVX512_BF16",
               kSgemmSize, m.sgemm_gflops);
  std::fprintf(out, "backend: %s, median of up to %d runs (min-max)\n\n",
               std::string(backend_name(report.backend)).c_str(), report.repeat);
  std::fprintf(out, "%-16s %26s %8s %5s %8s %6s %10s %10s %9s %11s %12s\n", "scenario",
               "time ms (min-max)", "GB/s", "%bw", "GFLOP/s", "%peak", "%adjacent", "vs masked",
               "vs dense", "cap 64x/1x", "mixed/parts");
  for (const ScenarioResult& s : report.scenarios) {
    const Rates r = rates(s.main, m, s.dtype);
    const SharedCells cells = shared_cells(s, s.main, s.one(), 2);
    char adjacent[32] = "-";
    if (!s.main.probe_limit.empty()) {
      std::snprintf(adjacent, sizeof adjacent, "%.0f%% %s", 100 * s.main.fraction_of_probe(),
                    s.main.probe_limit.c_str());
    }
    const bool scaled = s.main.masked_fraction < 1.0;
    std::fprintf(out, "%-16s %26s %8.1f %4.0f%% %8.1f %5.1f%% %10s %9.1fx%s %8.1fx %11s %12s\n",
                 s.name.c_str(), cells.time.c_str(), r.gbps, 100 * r.fraction_of_bandwidth,
                 r.gflops, 100 * r.fraction_of_peak, adjacent, r.speedup_masked, scaled ? "*" : " ",
                 r.speedup_dense, cells.capacity.c_str(), cells.mixed.c_str());
  }
  std::fprintf(
      out, "\nbaselines, median ms [runs]; check = max|rpa - gather-dense| / max|gather-dense|\n");
  for (const ScenarioResult& s : report.scenarios) {
    const Measured& b = s.main;
    std::fprintf(out, "%-16s capacity-masked %10.1f%s [%d]  gather-dense %9.1f [%d]  check %.1e\n",
                 s.name.c_str(), ms(b.masked_seconds()), b.masked_fraction < 1.0 ? "*" : " ",
                 b.capacity_masked.samples(), ms(b.gather_dense.median()), b.gather_dense.samples(),
                 b.rel_diff_vs_gather_dense);
    if (s.at_1x) {
      std::fprintf(out,
                   "%-16s   at 1x: rpa %.2f ms, capacity-masked %.1f ms (x%.0f at %dx), "
                   "gather-dense %.1f ms\n",
                   "", ms(s.at_1x->rpa.median()), ms(s.at_1x->masked_seconds()),
                   b.masked_seconds() / s.at_1x->masked_seconds(), s.capacity_multiplier,
                   ms(s.at_1x->gather_dense.median()));
    }
    if (s.parts) {
      const PartTimes& p = *s.parts;
      std::fprintf(out,
                   "%-16s   parts alone: rpa decode %.2f [%d] + prefill %.2f [%d] = %.2f ms, "
                   "check vs whole %.1e\n",
                   "", ms(p.decode.median()), p.decode.samples(), ms(p.prefill.median()),
                   p.prefill.samples(), ms(p.decode.median() + p.prefill.median()),
                   p.rel_diff_vs_whole);
    }
  }
  for (const ScenarioResult& s : report.scenarios) {
    if (s.main.masked_fraction < 1.0) {
      std::fprintf(out,
                   "* %s: capacity-masked timed on %.1f%% of its rows and scaled up "
                   "(nearly all its keys are masked, so its rows cost alike)\n",
                   s.name.c_str(), 100 * s.main.masked_fraction);
    }
  }
}

}  // namespace rpa::bench
