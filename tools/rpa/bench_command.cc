// STUB: being written.
#include "commands.h"
namespace rpa::cli {
void add_bench_command(CLI::App&, int&) {}
}  // namespace rpa::cli
