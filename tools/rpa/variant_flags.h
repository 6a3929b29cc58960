// The attention-variant flags shared by demo, plan, bench and gen, bound to a
// generator spec so every subcommand spells them the same way.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "generate/batch.h"

namespace rpa::cli {

inline void add_variant_flags(CLI::App* cmd, gen::BatchSpec& spec) {
  cmd->add_option("--sliding-window", spec.options.sliding_window,
                  "each query sees only its W most recent keys (0 = off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--logit-soft-cap", spec.options.logit_soft_cap,
                  "cap logits with c * tanh(x / c) (0 = off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--sinks", spec.sinks, "add generated per-head learned sinks");
  cmd->add_flag("--lse", spec.lse, "also compute the log-sum-exp output");
  cmd->add_option_function<std::string>(
         "--kv-dtype",
         [&spec](const std::string& name) {
           spec.kv_quant = name == "fp8"              ? gen::KvQuant::kFp8PerHead
                           : name == "fp8-per-tensor" ? gen::KvQuant::kFp8PerTensor
                                                      : gen::KvQuant::kNone;
         },
         "K/V cache dtype: q (as q, the default), fp8 (e4m3 with a scale per kv head) or "
         "fp8-per-tensor (one scale)")
      ->check(CLI::IsMember({"q", "fp8", "fp8-per-tensor"}));
}

}  // namespace rpa::cli
