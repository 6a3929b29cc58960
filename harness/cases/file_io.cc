#include "cases/file_io.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/message.h"

namespace rpa::cases {

Status open_for_reading(const std::string& path, std::ifstream* file, int64_t* size) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return Status::Invalid("is a directory, not a file");
  }
  const auto bytes = std::filesystem::file_size(path, error);
  if (error) return Status::Invalid(cat("cannot read: ", error.message()));
  file->open(path, std::ios::binary);
  if (!file->is_open()) {
    return Status::Invalid(cat("cannot open: ", std::strerror(errno)));
  }
  *size = static_cast<int64_t>(bytes);
  return Status::Ok();
}

Status read_at(std::istream& in, int64_t offset, int64_t count, void* out) {
  in.seekg(offset);
  in.read(static_cast<char*>(out), count);
  if (!in || in.gcount() != count) {
    return Status::Invalid(cat("could not read ", count, " bytes at offset ", offset));
  }
  return Status::Ok();
}

Status write_file_atomically(const std::string& path,
                             const std::function<void(std::ofstream&)>& body) {
  // The process id and a counter keep concurrent writers (processes or
  // threads) of the same path from sharing a temporary file.
  static std::atomic<int> counter{0};
  const std::string temp = cat(path, ".tmp-", getpid(), "-", counter++);
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    if (!file.is_open()) {
      return Status::Invalid(cat("cannot write '", path, "': ", std::strerror(errno)));
    }
    body(file);
    file.flush();
    if (!file) {
      std::remove(temp.c_str());
      return Status::Internal(cat("writing '", path, "' failed: ", std::strerror(errno)));
    }
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::remove(temp.c_str());
    return Status::Internal(cat("cannot rename '", temp, "' to '", path, "': ", error.message()));
  }
  return Status::Ok();
}

}  // namespace rpa::cases
