// `rpa run`, `rpa verify` and `rpa gen`: attention on case files
// (docs/cases.md). Every failure prints one message on stderr and exits 1;
// `rpa run` writes its output only after the whole call succeeded.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cases/case_file.h"
#include "cases/safetensors.h"
#include "commands.h"
#include "compare/compare.h"
#include "generate/batch.h"
#include "host_call.h"
#include "variant_flags.h"

namespace rpa::cli {
namespace {

using cases::Case;
using cases::HostTensor;

// Prints a failed status as `rpa COMMAND: message` and returns the exit code.
int report(const char* command, const Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "rpa %s: %s\n", command, status.message().c_str());
  return 1;
}

// What one backend made of a case: out (and lse), zero where nothing was
// written (padding rows, inactive slots), and the views it was written through.
struct Result {
  HostTensor out, lse;
  AttentionOutputs views;
};

Status load_runnable(const std::string& path, Case* c, AttentionInputs* inputs) {
  RPA_RETURN_IF_ERROR(cases::load_case(path, c));
  return c->inputs(inputs);
}

Status run_backend(const Case& c, const AttentionInputs& inputs, const RunConfig& config,
                   DType out_dtype, Result* result) {
  result->out.dtype = out_dtype;
  result->out.shape = c.q.shape;
  result->out.bytes.assign(static_cast<size_t>(c.q.numel() * dtype_size(out_dtype)), 0);
  // lse is [num_tokens, num_kv_heads, heads_per_kv]; a q of another rank is
  // rejected by the attention call itself, with a message about q.
  result->lse.dtype = DType::kF32;
  result->lse.shape.assign(c.q.shape.begin(),
                           c.q.shape.begin() + std::min<size_t>(3, c.q.shape.size()));
  result->lse.bytes.assign(static_cast<size_t>(result->lse.numel() * 4), 0);
  RPA_RETURN_IF_ERROR(result->out.view("out", &result->views.out));
  RPA_RETURN_IF_ERROR(result->lse.view("lse", &result->views.lse));
  return cli::attention_from_host(inputs, c.options, result->views, config);
}

Status parse_config(const std::string& backend, int threads, RunConfig* config) {
  if (!parse_backend(backend, &config->backend)) {
    return Status::Invalid("unknown backend '" + backend +
                           "' (auto, reference, single-loop, cpu, cuda)");
  }
  config->threads = threads;
  return Status::Ok();
}

struct RunFlags {
  std::string case_path, out_path, backend = "auto";
  int threads = 0;
  bool lse = false;
};

Status run_case(const RunFlags& flags) {
  Case c;
  AttentionInputs inputs;
  RunConfig config;
  Result result;
  RPA_RETURN_IF_ERROR(parse_config(flags.backend, flags.threads, &config));
  RPA_RETURN_IF_ERROR(load_runnable(flags.case_path, &c, &inputs));
  RPA_RETURN_IF_ERROR(run_backend(c, inputs, config, c.q.dtype, &result));
  cases::SafetensorsFile file;
  file.metadata["backend"] = flags.backend;
  file.tensors.emplace_back("out", std::move(result.out));
  if (flags.lse) file.tensors.emplace_back("lse", std::move(result.lse));
  return cases::write_safetensors(flags.out_path, file);
}

// Max |got - want| over the lse of live rows; NaN or Inf count as +inf.
Comparison compare_lse(const Case& c, const HostTensor& got, const HostTensor& want) {
  Comparison cmp;
  const auto* seq_lens = reinterpret_cast<const int32_t*>(c.seq_lens.bytes.data());
  const auto* starts = reinterpret_cast<const int32_t*>(c.query_start_len.bytes.data());
  const int64_t heads = got.shape[1] * got.shape[2];
  const auto* a = reinterpret_cast<const float*>(got.bytes.data());
  const auto* b = reinterpret_cast<const float*>(want.bytes.data());
  for (int64_t s = 0; s < c.seq_lens.numel(); ++s) {
    if (seq_lens[s] == 0) continue;
    for (int64_t i = starts[s] * heads; i < starts[s + 1] * heads; ++i) {
      const bool finite = std::isfinite(a[i]) && std::isfinite(b[i]);
      cmp.max_abs_error =
          std::max<double>(cmp.max_abs_error, finite ? std::fabs(a[i] - b[i]) : INFINITY);
      if (std::isfinite(b[i])) {
        cmp.max_abs_reference = std::max<double>(cmp.max_abs_reference, std::fabs(b[i]));
      }
    }
  }
  return cmp;
}

struct VerifyFlags {
  std::string case_path, backend = "auto";
  int threads = 0;
};

// Sets `pass` when the backend agrees with the reference within tolerance.
Status verify_case(const VerifyFlags& flags, bool* pass) {
  Case c;
  AttentionInputs inputs;
  RunConfig config;
  Result got, want;
  RPA_RETURN_IF_ERROR(parse_config(flags.backend, flags.threads, &config));
  RPA_RETURN_IF_ERROR(load_runnable(flags.case_path, &c, &inputs));
  // The backend writes out in q's dtype, as a caller gets it; the reference
  // writes f32, the most exact oracle there is.
  RPA_RETURN_IF_ERROR(run_backend(c, inputs, config, c.q.dtype, &got));
  RPA_RETURN_IF_ERROR(
      run_backend(c, inputs, RunConfig{Backend::kReference, 0, true}, DType::kF32, &want));
  const Comparison out = compare_outputs(
      got.views.out, want.views.out, reinterpret_cast<const int32_t*>(c.seq_lens.bytes.data()),
      reinterpret_cast<const int32_t*>(c.query_start_len.bytes.data()), c.seq_lens.numel());
  const Comparison lse = compare_lse(c, got.lse, want.lse);
  // out is held to docs/contract.md §5; lse (a log, so compared absolutely) to the same
  // tolerance scaled by max(1, max |lse|).
  const double tolerance = tolerance_for(c.q.dtype);
  const double lse_limit = tolerance * std::max(1.0, lse.max_abs_reference);
  *pass = out.within(tolerance) && lse.max_abs_error <= lse_limit;
  std::printf("rpa verify: %s, backend %s vs reference, %lld live rows\n", flags.case_path.c_str(),
              flags.backend.c_str(), static_cast<long long>(out.rows));
  std::printf("  out  max abs error %.3e, %.3e relative to max |out| %.3e, tolerance %.0e (%s)\n",
              out.max_abs_error, out.relative_error(), out.max_abs_reference, tolerance,
              std::string(dtype_name(c.q.dtype)).c_str());
  std::printf("  lse  max abs error %.3e, limit %.3e\n", lse.max_abs_error, lse_limit);
  std::printf("  %s\n", *pass ? "PASS" : "FAIL");
  return Status::Ok();
}

struct GenFlags {
  gen::BatchSpec spec;
  std::string out_path, dtype = "bf16";
  bool npy = false;
};

Status gen_case(GenFlags& flags) {
  if (!parse_dtype(flags.dtype, &flags.spec.dtype) || flags.spec.dtype == DType::kI32 ||
      flags.spec.dtype == DType::kF8E4M3) {
    return Status::Invalid("unknown dtype '" + flags.dtype +
                           "' (f32, bf16, f16; fp8 caches: --kv-dtype fp8)");
  }
  flags.spec.out_dtype = flags.spec.dtype;
  const gen::Batch batch = gen::generate(flags.spec);
  const Case c = cases::make_case(batch.inputs(), flags.spec.options);
  RPA_RETURN_IF_ERROR(flags.npy ? cases::save_case_npy(flags.out_path, c)
                                : cases::save_case(flags.out_path, c));
  std::printf("rpa gen: wrote %s (%d tokens of which %lld live, capacity %d, %d pages, %s)\n",
              flags.out_path.c_str(), batch.num_tokens, static_cast<long long>(batch.live_rows()),
              flags.spec.batch_capacity, batch.num_pages, flags.dtype.c_str());
  return Status::Ok();
}

void add_gen_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<GenFlags>();
  gen::BatchSpec& spec = flags->spec;
  CLI::App* cmd = app.add_subcommand("gen", "Write a generated ragged batch as a case file");
  cmd->add_option("--out", flags->out_path, "output .safetensors file (a directory with --npy)")
      ->required();
  cmd->add_flag("--npy", flags->npy, "write a directory of .npy files plus options.json");
  cmd->add_option("--seed", spec.seed, "generator seed");
  cmd->add_option("--capacity", spec.batch_capacity, "batch capacity (slots)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--active", spec.num_active, "active slots")->check(CLI::NonNegativeNumber);
  cmd->add_option("--kv-heads", spec.num_kv_heads, "kv heads")->check(CLI::PositiveNumber);
  cmd->add_option("--heads-per-kv", spec.heads_per_kv, "query heads per kv head")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--head-dim", spec.head_dim, "head dimension")->check(CLI::PositiveNumber);
  cmd->add_option("--page-size", spec.page_size, "tokens per page")->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", flags->dtype, "f32, bf16 or f16");
  cmd->add_option("--scale", spec.options.scale, "logit scale (0 = 1/sqrt(head_dim))");
  cmd->add_option("--max-context", spec.max_context, "longest context of decode/chunk slots");
  cmd->add_option("--max-chunk", spec.max_chunk, "longest chunked-prefill q_len");
  cmd->add_option("--max-prompt", spec.max_prompt, "longest fresh prompt");
  cmd->add_option("--padding", spec.token_padding, "padding rows after the last slot's rows")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--spare-pages", spec.spare_pages, "unreferenced NaN pages in the pool")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--shared-prefix", spec.shared_prefix_fraction,
                  "fraction of slots sharing a prefix page run")
      ->check(CLI::Range(0.0, 1.0));
  add_variant_flags(cmd, spec);
  // A case file holds inputs only: whether to compute lse is `rpa run --lse`.
  cmd->remove_option(cmd->get_option("--lse"));
  cmd->callback([flags, &exit_code] { exit_code = report("gen", gen_case(*flags)); });
}

}  // namespace

void add_case_commands(CLI::App& app, int& exit_code) {
  auto run = std::make_shared<RunFlags>();
  CLI::App* run_cmd =
      app.add_subcommand("run", "Run attention on a case file, write out (and lse)");
  run_cmd->add_option("case", run->case_path, "case: .safetensors file or .npy directory")
      ->required();
  run_cmd->add_option("--out", run->out_path, "output .safetensors file")->required();
  run_cmd->add_option("--backend", run->backend, "auto, cpu, single-loop, reference or cuda");
  run_cmd->add_option("--threads", run->threads, "threads (0 = all)")
      ->check(CLI::NonNegativeNumber);
  run_cmd->add_flag("--lse", run->lse, "also write lse");
  run_cmd->callback([run, &exit_code] { exit_code = report("run", run_case(*run)); });

  auto verify = std::make_shared<VerifyFlags>();
  CLI::App* verify_cmd =
      app.add_subcommand("verify", "Check a backend against the reference on a case file");
  verify_cmd->add_option("case", verify->case_path, "case: .safetensors file or .npy directory")
      ->required();
  verify_cmd->add_option("--backend", verify->backend, "auto, cpu, single-loop, reference or cuda");
  verify_cmd->add_option("--threads", verify->threads, "threads (0 = all)")
      ->check(CLI::NonNegativeNumber);
  verify_cmd->callback([verify, &exit_code] {
    bool pass = false;
    exit_code = report("verify", verify_case(*verify, &pass));
    if (exit_code == 0 && !pass) exit_code = 1;
  });

  add_gen_command(app, exit_code);
}

}  // namespace rpa::cli
