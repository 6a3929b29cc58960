// `rpa demo`: one serving step of a Llama-3-8B layer, run on the best backend,
// checked against the reference.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "compare/compare.h"
#include "generate/batch.h"
#include "host_call.h"
#include "rpa/plan.h"
#include "variant_flags.h"

namespace rpa::cli {
namespace {

struct DemoFlags {
  gen::BatchSpec spec = gen::demo_spec();
  std::string backend = "auto";
  int threads = 0;
  int repeat = 5;
  bool json = false;
};

struct Timed {
  Status status;
  double median_ms = 0.0;
};

Timed run_timed(const gen::Batch& batch, const AttentionOutputs& outputs, const RunConfig& config,
                int repeat) {
  std::vector<double> times;
  Timed result;
  for (int i = 0; i < std::max(1, repeat); ++i) {
    const auto start = std::chrono::steady_clock::now();
    result.status = attention_from_host(batch.inputs(), batch.spec.options, outputs, config);
    const auto stop = std::chrono::steady_clock::now();
    if (!result.status.ok()) return result;
    times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(times.begin(), times.end());
  result.median_ms = times[times.size() / 2];
  return result;
}

int run_demo(const DemoFlags& flags) {
  RunConfig config;
  if (!parse_backend(flags.backend, &config.backend)) {
    std::fprintf(stderr, "rpa demo: unknown backend '%s'\n", flags.backend.c_str());
    return 2;
  }
  config.threads = flags.threads;
  const gen::Batch batch = gen::generate(flags.spec);

  Plan plan;
  if (Status s = make_plan(batch.inputs(), batch.spec.options, &plan); !s.ok()) {
    std::fprintf(stderr, "rpa demo: %s\n", s.message().c_str());
    return 1;
  }

  std::vector<uint8_t> out_buffer = batch.make_out(), ref_buffer = batch.make_out();
  std::vector<float> lse_buffer = batch.make_lse(), ref_lse_buffer = batch.make_lse();
  AttentionOutputs out{batch.out_view(out_buffer), {}};
  AttentionOutputs ref{batch.out_view(ref_buffer), {}};
  if (flags.spec.lse) {
    out.lse = batch.lse_view(lse_buffer);
    ref.lse = batch.lse_view(ref_lse_buffer);
  }
  const Backend chosen = config.backend == Backend::kAuto ? Backend::kCpu : config.backend;
  const Timed fast = run_timed(batch, out, config, flags.repeat);
  const Timed oracle = run_timed(batch, ref, RunConfig{Backend::kReference, 0, true}, 1);
  for (const Timed* t : {&fast, &oracle}) {
    if (!t->status.ok()) {
      std::fprintf(stderr, "rpa demo: %s\n", t->status.message().c_str());
      return 1;
    }
  }

  const Comparison cmp = compare_outputs(out.out, ref.out, batch.seq_lens.data(),
                                         batch.query_start_len.data(), flags.spec.batch_capacity);
  const double tolerance = tolerance_for(flags.spec.dtype);
  const bool verified = cmp.within(tolerance) && cmp.rows == batch.live_rows();
  const PlanStats& st = plan.stats;

  if (flags.json) {
    nlohmann::json j = {
        {"verified", verified},
        {"max_abs_error", cmp.max_abs_error},
        {"relative_error", cmp.relative_error()},
        {"tolerance", tolerance},
        {"backend", std::string(backend_name(chosen))},
        {"kv_dtype", std::string(dtype_name(flags.spec.kv_dtype()))},
        {"time_ms", fast.median_ms},
        {"reference_time_ms", oracle.median_ms},
        {"live_slots", st.live_slots},
        {"batch_capacity", st.batch_capacity},
        {"live_rows", st.decode_rows + st.prefill_rows},
        {"capacity_rows", batch.num_tokens},
        {"visible_kv_tokens", st.visible_kv_tokens},
        {"capacity_kv_tokens", st.capacity_kv_tokens},
        {"items", st.items},
    };
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("rpa demo: one serving step of a Llama-3-8B layer (%d q heads, %d kv heads, "
                "head_dim %d, page %d, %s, K/V %s)\n",
                flags.spec.num_kv_heads * flags.spec.heads_per_kv, flags.spec.num_kv_heads,
                flags.spec.head_dim, flags.spec.page_size,
                std::string(dtype_name(flags.spec.dtype)).c_str(),
                std::string(dtype_name(flags.spec.kv_dtype())).c_str());
    std::printf("  slots      %8lld live of %lld capacity\n", static_cast<long long>(st.live_slots),
                static_cast<long long>(st.batch_capacity));
    std::printf("  rows       %8lld live of %d capacity (%lld decode, %lld prefill)\n",
                static_cast<long long>(st.decode_rows + st.prefill_rows), batch.num_tokens,
                static_cast<long long>(st.decode_rows), static_cast<long long>(st.prefill_rows));
    std::printf("  kv tokens  %8lld visible of %lld capacity-masked (%.4f%%)\n",
                static_cast<long long>(st.visible_kv_tokens),
                static_cast<long long>(st.capacity_kv_tokens), 100.0 * st.useful_ratio);
    std::printf("  time       %8.3f ms %s (median of %d), reference %.1f ms\n", fast.median_ms,
                std::string(backend_name(chosen)).c_str(), std::max(1, flags.repeat),
                oracle.median_ms);
    std::printf("  error      %8.2e max abs, %.2e relative to max |out|, tolerance %.0e: %s\n",
                cmp.max_abs_error, cmp.relative_error(), tolerance,
                verified ? "verified" : "FAILED");
  }
  return verified ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run one Llama-3-8B-shaped serving step on the best backend and verify it");
  cmd->add_option("--backend", flags->backend,
                  "auto, cpu, cuda (timed with its host<->device copies), single-loop or reference");
  cmd->add_option("--threads", flags->threads, "threads (0 = all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--repeat", flags->repeat, "timed runs (the median is reported)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", flags->spec.seed, "generator seed");
  cmd->add_flag("--json", flags->json, "print one JSON object");
  add_variant_flags(cmd, flags->spec);
  cmd->callback([flags, &exit_code] { exit_code = run_demo(*flags); });
}

}  // namespace rpa::cli
