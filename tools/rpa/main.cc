// rpa: ragged paged attention from the command line.
#include <CLI/CLI.hpp>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"rpa: ragged paged attention (demo, plan, bench, run, verify, gen, machine)"};
  app.require_subcommand(1);
  int exit_code = 0;
  rpa::cli::add_demo_command(app, exit_code);
  rpa::cli::add_plan_command(app, exit_code);
  rpa::cli::add_bench_command(app, exit_code);
  rpa::cli::add_case_commands(app, exit_code);
  rpa::cli::add_machine_command(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
