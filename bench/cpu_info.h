// Which machine a report comes from: machines are drawn from a pool (AVX2-only
// and AVX-512 x86 CPUs), and a figure without its CPU cannot be compared.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rpa::bench {

struct CpuInfo {
  std::string model;                      // "model name" of /proc/cpuinfo
  std::vector<std::string> isa_flags;     // those of kIsaFlags the CPU reports
  std::vector<std::string> simd_targets;  // Highway targets built and runnable here, best first
  std::string simd_target;                // the one dispatched to
  bool bf16_dot = false;                  // the cpu backend's AVX512_BF16 kernels run
  bool amx = false;                       // AMX-BF16 tiles granted to this process
};

// The instruction-set extensions that decide which kernels run, by their
// Linux /proc/cpuinfo names.
inline const std::vector<std::string> kIsaFlags = {
    "avx2",       "fma",         "f16c",        "avx512f",  "avx512bw", "avx512vl",
    "avx512vbmi", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"};

CpuInfo describe_cpu();

nlohmann::json to_json(const CpuInfo& cpu);

// One line: "model | flags | Highway targets (dispatched first)".
std::string describe_line(const CpuInfo& cpu);

}  // namespace rpa::bench
