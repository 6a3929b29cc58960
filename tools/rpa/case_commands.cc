// STUB: being written.
#include "commands.h"
namespace rpa::cli {
void add_case_commands(CLI::App&, int&) {}
}  // namespace rpa::cli
