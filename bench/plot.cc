#include "bench/plot.h"

#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <vector>

extern char** environ;

namespace rpa::bench {

Status plot_report(const Report& report, const std::string& png) {
  const std::string data = std::filesystem::path(png).replace_extension(".json").string();
  {
    std::ofstream file(data);
    file << nlohmann::json{{"machine", to_json(report)["machine"]}, {"sweep", sweep_json(report)}}
                .dump(2)
         << "\n";
    if (!file) return Status::Internal("cannot write the sweep to '" + data + "'");
  }
  // Run the interpreter directly (no shell), so no path needs quoting.
  std::vector<std::string> args = {"/usr/bin/python3", RPA_PLOT_SCRIPT, data, png};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    return Status::Internal("cannot start /usr/bin/python3 to draw '" + png + "'");
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Internal(std::string(RPA_PLOT_SCRIPT) + " failed on '" + data + "'");
  }
  return Status::Ok();
}

}  // namespace rpa::bench
