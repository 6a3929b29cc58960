// `rpa machine`: which CPU this is and which of rpa's instruction-set paths
// run on it, without measuring anything. Machines come from a pool (AVX2-only
// and AVX-512 CPUs): test logs and bug reports start with this line.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/cpu_info.h"
#include "commands.h"

namespace rpa::cli {

void add_machine_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "machine", "Print the CPU model, the ISA extensions rpa's kernels use and the SIMD paths "
                 "that run here");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "print a JSON object");
  cmd->callback([json, &exit_code] {
    const bench::CpuInfo cpu = bench::describe_cpu();
    if (*json) {
      std::printf("%s\n", bench::to_json(cpu).dump(2).c_str());
    } else {
      std::printf("%s\n", bench::describe_line(cpu).c_str());
    }
    exit_code = 0;
  });
}

}  // namespace rpa::cli
