// The reports of `rpa bench`, one for every backend: the human table and the
// JSON object. What every backend says of a scenario (its name and dtype,
// rpa's time and work, the capacity and mixed ratios) is written once
// (report.cc); each backend adds its own limits, baselines or call modes
// (cpu_report.cc, cuda_report.cc). Every key is documented in
// docs/benchmarks.md; scripts/ (compare_torch_sdpa.py, plot_bench.py,
// compare_openvino.py) read the JSON.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "bench/cpu_runner.h"
#include "bench/cuda_runner.h"

namespace rpa::bench {

nlohmann::json to_json(const Report& report);
nlohmann::json to_json(const CudaReport& report);
nlohmann::json sweep_json(const Report& report);  // --plot's points
void print_table(const Report& report, std::FILE* out);
void print_table(const CudaReport& report, std::FILE* out);

// For the backends' reports:
inline double ms(double seconds) { return seconds * 1e3; }

// name, summary, backend, dtype; unless the scenario failed, also time_ms
// (min, max, samples), useful_bytes, flops, gbps, the capacity keys (null
// without a 1x run) and the mixed keys (null without parts).
nlohmann::json shared_json(const ScenarioHead& s, std::string_view backend, const BatchTimes& main,
                           const BatchTimes* at_1x);

// The table's cells every backend has: rpa's time as "median (min-max)" ms to
// `digits` decimals, the capacity ratio and the mixed ratio ("-" without).
struct SharedCells {
  std::string time, capacity, mixed;
};
SharedCells shared_cells(const ScenarioHead& s, const BatchTimes& main, const BatchTimes* at_1x,
                         int digits);

}  // namespace rpa::bench
