// `rpa plan`: plan the demo scenario or a generated batch and print the
// useful-work statistics; or export the device tables and the Neuron cost
// model (neuron_tables.h).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "bench/scenarios.h"
#include "cases/case_file.h"
#include "commands.h"
#include "core/message.h"
#include "generate/batch.h"
#include "neuron_tables.h"
#include "plan/stat_fields.h"
#include "rpa/plan.h"
#include "variant_flags.h"

namespace rpa::cli {
namespace {

struct PlanFlags {
  std::string case_path;  // plan this case file instead of a generated batch
  gen::BatchSpec spec = gen::demo_spec();
  bool generated = false;
  bool json = false;
  PlanConfig config;
  std::string scenario;     // plan a `rpa bench` scenario (decode-long, mixed, ...)
  std::string export_dir;   // write the device tables here (docs/neuron.md)
  bool neuron_cost = false;  // print the Neuron cost model
  DeviceTablesConfig device;
};

nlohmann::json stats_json(const Plan& plan) {
  nlohmann::json j = nlohmann::json::object();
  for_each_plan_stat(plan, [&](const char* name, auto value) { j[name] = value; });
  return j;
}

// The inputs to plan: a case file, the demo, or a generated batch. `batch` and
// `loaded` own the buffers the returned views point into.
Status planned_inputs(PlanFlags& flags, gen::Batch& batch, cases::Case& loaded,
                      AttentionInputs* inputs, AttentionOptions* options) {
  if (!flags.case_path.empty()) {
    RPA_RETURN_IF_ERROR(cases::load_case(flags.case_path, &loaded));
    *options = loaded.options;
    return loaded.inputs(inputs);
  }
  if (!flags.scenario.empty()) {
    const std::optional<bench::Scenario> found = bench::find_scenario(flags.scenario);
    if (!found) {
      return Status::Invalid(cat("--scenario ", flags.scenario, " is not a bench scenario"));
    }
    flags.spec = found->spec;
  } else if (flags.generated) {
    const gen::BatchSpec defaults;
    flags.spec.num_kv_heads = defaults.num_kv_heads;
    flags.spec.heads_per_kv = defaults.heads_per_kv;
    flags.spec.head_dim = defaults.head_dim;
    flags.spec.slots.clear();
    flags.spec.slot_positions.clear();
  }
  try {
    batch = gen::generate(flags.spec);
  } catch (const std::invalid_argument& e) {
    return Status::Invalid(e.what());
  }
  *inputs = batch.inputs();
  *options = batch.spec.options;
  return Status::Ok();
}

// --export and --neuron-cost: the device tables, with the plan sizes the
// flags give (0 = the device heuristics).
int run_device(const PlanFlags& flags, const AttentionInputs& inputs,
               const AttentionOptions& options) {
  DeviceTablesConfig config = flags.device;
  config.q_tile_rows = flags.config.q_tile_rows;
  config.kv_chunk_tokens = flags.config.kv_chunk_tokens;
  config.split_tokens = flags.config.split_tokens;
  if (!flags.export_dir.empty()) {
    DeviceTables tables;
    Status s = make_device_tables(inputs, options, &tables, config);
    if (s.ok()) s = write_device_tables(flags.export_dir, tables);
    if (!s.ok()) {
      std::fprintf(stderr, "rpa plan: %s\n", s.message().c_str());
      return 1;
    }
    std::printf("rpa plan: %lld rows (%lld per core on %d cores), %lld merge rows -> %s\n",
                static_cast<long long>(tables.num_rows),
                static_cast<long long>(tables.rows_per_core), tables.config.num_cores, static_cast<long long>(tables.num_merges),
                flags.export_dir.c_str());
  }
  if (flags.neuron_cost) {
    std::string error;
    const nlohmann::json cost = neuron_cost(inputs, options, config, &error);
    if (cost.is_null()) {
      std::fprintf(stderr, "rpa plan: %s\n", error.c_str());
      return 1;
    }
    if (flags.json) {
      std::printf("%s\n", cost.dump(2).c_str());
    } else {
      print_neuron_cost(cost);
    }
  }
  return 0;
}

int run_plan(PlanFlags& flags) {
  gen::Batch batch;
  cases::Case loaded;
  AttentionInputs inputs;
  AttentionOptions options;
  Plan plan;
  Status s = planned_inputs(flags, batch, loaded, &inputs, &options);
  if (s.ok()) s = make_plan(inputs, options, &plan, flags.config);
  if (!s.ok()) {
    std::fprintf(stderr, "rpa plan: %s\n", s.message().c_str());
    return 1;
  }
  if (!flags.export_dir.empty() || flags.neuron_cost) return run_device(flags, inputs, options);
  const nlohmann::json j = stats_json(plan);
  if (flags.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  const std::string what = !flags.case_path.empty() ? flags.case_path
                           : flags.generated        ? "generated batch"
                                                    : "demo scenario";
  std::printf("rpa plan: %s\n", what.c_str());
  for (const auto& [key, value] : j.items())
    std::printf("  %-20s %s\n", key.c_str(), value.dump().c_str());
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<PlanFlags>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "Plan a case file, the demo scenario (default) or a generated batch; print its statistics");
  cmd->add_option("case", flags->case_path, "a .safetensors case file or .npy case directory");
  cmd->add_flag("--generate", flags->generated, "plan a random batch instead of the demo");
  cmd->add_option("--seed", flags->spec.seed, "generator seed");
  cmd->add_option("--capacity", flags->spec.batch_capacity, "batch capacity (with --generate)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--active", flags->spec.num_active, "active slots (with --generate)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--q-tile-rows", flags->config.q_tile_rows,
                  "override the Q tile (0 = heuristic)");
  cmd->add_option("--kv-chunk", flags->config.kv_chunk_tokens,
                  "override keys per item (0 = heuristic)");
  cmd->add_option("--split", flags->config.split_tokens, "override keys per split of a one-tile slot; a slot of T tiles splits at T times it (0 = heuristic)");
  cmd->add_flag("--json", flags->json, "print one JSON object");
  cmd->add_option("--scenario", flags->scenario,
                  "plan a `rpa bench` scenario instead (decode-long, mixed, prefill, ...)");
  cmd->add_option("--export", flags->export_dir,
                  "write the device tables (.npy + header.json) to this folder (docs/neuron.md)");
  cmd->add_flag("--neuron-cost", flags->neuron_cost,
                "print the Neuron cost MODEL (Inf2, Trn2): capacity-masked vs the device tables");
  cmd->add_option("--cores", flags->device.num_cores, "cores of the device tables (default 2)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--kv-heads-per-row", flags->device.kv_heads_per_row,
                  "kv heads per device-table row (0 = all)")
      ->check(CLI::NonNegativeNumber);
  add_variant_flags(cmd, flags->spec);
  cmd->callback([flags, &exit_code] { exit_code = run_plan(*flags); });
}

}  // namespace rpa::cli
