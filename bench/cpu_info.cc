#include "bench/cpu_info.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

#include "bench/machine_kernels.h"
#include "cpu/cpu_features.h"
#include "hwy/targets.h"

namespace rpa::bench {
namespace {

// The value of the first "key : value" line of /proc/cpuinfo named `key`.
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(name.find_last_not_of(" \t") + 1);
    if (name != key) continue;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return {};
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

}  // namespace

CpuInfo describe_cpu() {
  CpuInfo cpu;
  cpu.model = cpuinfo_field("model name");
  if (cpu.model.empty()) cpu.model = "unknown";
  std::istringstream flags(cpuinfo_field("flags"));
  const std::vector<std::string> present{std::istream_iterator<std::string>(flags), {}};
  for (const std::string& f : kIsaFlags) {
    if (std::find(present.begin(), present.end(), f) != present.end()) cpu.isa_flags.push_back(f);
  }
  // The targets the tests loop over (SetSupportedTargetsForTest), best first.
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    cpu.simd_targets.push_back(hwy::TargetName(target));
  }
  cpu.simd_target = simd_target_name();
  cpu.bf16_dot = rpa::cpu::has_avx512_bf16();
  cpu.amx = rpa::cpu::has_amx_bf16();
  return cpu;
}

nlohmann::json to_json(const CpuInfo& cpu) {
  return {{"cpu_model", cpu.model},
          {"isa_flags", cpu.isa_flags},
          {"highway_targets", cpu.simd_targets},
          {"highway_target", cpu.simd_target},
          {"bf16_dot_kernels", cpu.bf16_dot},
          {"amx_usable", cpu.amx}};
}

std::string describe_line(const CpuInfo& cpu) {
  return cpu.model + " | " + joined(cpu.isa_flags) + " | Highway " + cpu.simd_target +
         " (compiled and runnable: " + joined(cpu.simd_targets) + ")" +
         (cpu.bf16_dot ? " | AVX512_BF16 kernels" : "") + (cpu.amx ? " | AMX usable" : "");
}

}  // namespace rpa::bench
