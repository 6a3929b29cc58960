// The `rpa` subcommands. Each file registers one family on the CLI11 app; a
// subcommand's callback sets `exit_code`, which main() returns.
#pragma once

#include <CLI/CLI.hpp>

namespace rpa::cli {

void add_demo_command(CLI::App& app, int& exit_code);   // demo.cc
void add_plan_command(CLI::App& app, int& exit_code);   // plan_command.cc
void add_bench_command(CLI::App& app, int& exit_code);  // bench_command.cc
void add_case_commands(CLI::App& app, int& exit_code);  // case_commands.cc: run, verify, gen
void add_machine_command(CLI::App& app, int& exit_code);  // machine_command.cc

}  // namespace rpa::cli
