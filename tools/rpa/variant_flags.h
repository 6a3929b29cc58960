// The attention-variant flags shared by demo, plan, bench and gen, bound to a
// generator spec so every subcommand spells them the same way.
#pragma once

#include <CLI/CLI.hpp>

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
}

}  // namespace rpa::cli
