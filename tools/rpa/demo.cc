// STUB: being written.
#include "commands.h"
namespace rpa::cli {
void add_demo_command(CLI::App&, int&) {}
}  // namespace rpa::cli
