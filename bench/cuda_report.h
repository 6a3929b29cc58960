// Reports of `rpa bench --backend cuda`: the human table and the JSON object,
// derived from the GPU timings (cuda_runner.h) and the GPU's limits
// (gpu_rates.h). Every key is documented in docs/benchmarks.md ("CUDA
// backend: how to measure"); scripts/compare_torch_sdpa.py reads the JSON.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/cuda_runner.h"

namespace rpa::bench {

nlohmann::json to_json(const CudaReport& report);
void print_table(const CudaReport& report, std::FILE* out);

}  // namespace rpa::bench
