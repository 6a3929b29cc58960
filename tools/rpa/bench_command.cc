// `rpa bench`: times the scenarios against the machine's measured limits and
// against the built-in baselines, all in this one process (docs/benchmarks.md);
// with --backend cuda, on the GPU against the GPU's measured limits.
#include <omp.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/cpu_runner.h"
#include "bench/cuda_runner.h"
#include "bench/machine.h"
#include "bench/plot.h"
#include "bench/report.h"
#include "bench/scenarios.h"
#include "commands.h"
#include "variant_flags.h"

namespace rpa::cli {
namespace {

struct BenchFlags {
  std::vector<std::string> scenarios;  // empty = all
  bool json = false;
  std::string json_file;  // also write the JSON object here ("" = don't)
  bool list = false;
  int repeat = 5;
  int threads = 0;
  double budget_s = 3.0;
  std::string backend = "auto";
  std::string plot;
  gen::BatchSpec variant;  // only its options, sinks, lse and kv_quant are used
  PlanConfig plan_sizes;   // 0 = the backend's heuristic
};

// Applies the variant flags to a scenario's batches.
void apply_variant(const gen::BatchSpec& variant, gen::BatchSpec& spec) {
  spec.options = variant.options;
  spec.sinks = variant.sinks;
  spec.lse = variant.lse;
  spec.kv_quant = variant.kv_quant;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "rpa bench: %s\n", message.c_str());
  return 1;
}

// Prints the report (JSON or table) and writes --json-file; false when the
// file cannot be written.
template <typename Report>
bool emit(const BenchFlags& flags, const Report& report) {
  const nlohmann::json j = bench::to_json(report);
  if (flags.json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    bench::print_table(report, stdout);
  }
  if (flags.json_file.empty()) return true;
  std::ofstream file(flags.json_file);
  file << j.dump(2) << "\n";
  return static_cast<bool>(file);
}

// The scenarios named on the command line (all when none is), with the variant flags.
std::vector<bench::Scenario> selected_scenarios(const BenchFlags& flags) {
  std::vector<bench::Scenario> scenarios;
  for (const std::string& name : flags.scenarios) scenarios.push_back(*bench::find_scenario(name));
  if (scenarios.empty()) scenarios = bench::all_scenarios();
  for (bench::Scenario& scenario : scenarios) {
    apply_variant(flags.variant, scenario.spec);
    if (scenario.at_1x) apply_variant(flags.variant, *scenario.at_1x);
  }
  return scenarios;
}

// --backend cuda: rpa timed on the GPU against the GPU's limits, without the
// CPU baselines (bench/cuda_runner.h). Exits 1 when a scenario failed, after
// reporting the others.
int run_cuda_bench(const BenchFlags& flags, const bench::BenchConfig& config) {
  if (!flags.plot.empty()) {
    return fail("--plot draws the CPU sweeps; it does not run with --backend cuda");
  }
  // Checked before anything else runs, so that a machine without a GPU gets
  // the reason at once.
  if (Status s = bench::cuda_bench_available(); !s.ok()) return fail(s.message());
  bench::Progress progress(true);
  bench::CudaReport report;
  if (Status s = bench::run_cuda_bench(selected_scenarios(flags), config, progress, &report);
      !s.ok()) {
    return fail(s.message());
  }
  if (!emit(flags, report)) return fail("cannot write " + flags.json_file);
  int exit_code = 0;
  for (const bench::CudaScenarioResult& s : report.scenarios) {
    if (!s.error.empty()) exit_code = fail(s.name + ": " + s.error);
  }
  return exit_code;
}

int run_bench(const BenchFlags& flags) {
  if (flags.list) {
    for (const bench::Scenario& s : bench::all_scenarios()) {
      std::printf("%-16s %s\n", s.name.c_str(), s.summary.c_str());
    }
    return 0;
  }
  bench::BenchConfig config;
  if (!parse_backend(flags.backend, &config.backend))
    return fail("unknown backend '" + flags.backend + "'");
  config.threads = flags.threads > 0 ? flags.threads : omp_get_max_threads();
  config.policy.repeat = flags.repeat;
  config.policy.budget_s = flags.budget_s;
  config.plan_sizes = flags.plan_sizes;
  const PlanConfig& sizes = flags.plan_sizes;
  if (!flags.json && (sizes.q_tile_rows != 0 || sizes.kv_chunk_tokens != 0 || sizes.split_tokens != 0)) {
    std::printf("plan sizes: q_tile_rows %d, kv_chunk %d, split %d (0 = heuristic)\n",
                sizes.q_tile_rows, sizes.kv_chunk_tokens, sizes.split_tokens);
  }
  if (config.backend == Backend::kCuda) return run_cuda_bench(flags, config);
  const std::vector<bench::Scenario> scenarios = selected_scenarios(flags);

  bench::Progress progress(true);
  bench::Report report;
  report.backend = config.backend;
  report.repeat = config.policy.repeat;
  progress.step("measuring the machine's limits");
  report.machine = bench::measure_machine(config.threads);
  config.machine = &report.machine;
  for (const bench::Scenario& scenario : scenarios) {
    bench::ScenarioResult result;
    if (Status s = bench::run_scenario(scenario, config, progress, &result); !s.ok()) {
      return fail(scenario.name + ": " + s.message());
    }
    report.scenarios.push_back(std::move(result));
  }
  if (!flags.plot.empty()) {
    if (Status s = bench::run_sweep(config, progress, &report.sweep); !s.ok()) {
      return fail("sweep: " + s.message());
    }
    if (Status s = bench::plot_report(report, flags.plot); !s.ok()) return fail(s.message());
  }
  if (!emit(flags, report)) return fail("cannot write " + flags.json_file);
  if (!flags.json && !flags.plot.empty()) std::printf("\nplot: %s\n", flags.plot.c_str());
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Time scenarios against the machine's measured limits and the baselines");
  std::vector<std::string> names;
  for (const bench::Scenario& s : bench::all_scenarios()) names.push_back(s.name);
  cmd->add_option("scenario", flags->scenarios,
                  "scenarios to run (default: all; --list names them)")
      ->check(CLI::IsMember(names));
  cmd->add_flag("--json", flags->json, "print one JSON object instead of the table");
  cmd->add_option("--json-file", flags->json_file,
                  "also write the JSON object to FILE (with the table or --json)")
      ->type_name("FILE");
  cmd->add_flag("--list", flags->list, "list the scenarios and exit");
  cmd->add_option("--repeat", flags->repeat, "timed runs per series, at most (default 5)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", flags->threads, "threads for rpa, baselines and limits (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--budget", flags->budget_s,
                  "seconds one series may take before it stops repeating")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--backend", flags->backend, "auto | reference | single-loop | cpu | cuda");
  cmd->add_option("--plot", flags->plot,
                  "also sweep context length and capacity and draw them into FILE.png");
  cmd->add_option("--q-tile-rows", flags->plan_sizes.q_tile_rows,
                  "plan with this Q tile instead of the heuristic's (0 = heuristic)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kv-chunk", flags->plan_sizes.kv_chunk_tokens,
                  "plan with this many keys per item (0 = heuristic)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--split", flags->plan_sizes.split_tokens,
                  "plan with this many keys per split of a one-tile slot, a multiple of the "
                  "item's (0 = heuristic)")
      ->check(CLI::NonNegativeNumber);
  add_variant_flags(cmd, flags->variant);
  cmd->callback([flags, &exit_code] { exit_code = run_bench(*flags); });
}

}  // namespace rpa::cli
