// `rpa plan`: plan the demo scenario or a generated batch and print the
// useful-work statistics.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "cases/case_file.h"
#include "commands.h"
#include "generate/batch.h"
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
  if (flags.generated) {
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
  add_variant_flags(cmd, flags->spec);
  cmd->callback([flags, &exit_code] { exit_code = run_plan(*flags); });
}

}  // namespace rpa::cli
