// Whole-file helpers shared by the safetensors and .npy readers and writers.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>

#include "rpa/status.h"

namespace rpa::cases {

// Opens `path` for binary reading and reports its size in bytes. Messages do
// not repeat the path: the readers prefix it to every message they return.
Status open_for_reading(const std::string& path, std::ifstream* file, int64_t* size);

// Reads exactly `count` bytes at `offset` into `out`.
Status read_at(std::istream& in, int64_t offset, int64_t count, void* out);

// Writes a file through `body` into a temporary name beside `path` and renames
// it into place only when every write succeeded, so readers never see a
// partial file and a failure leaves nothing behind.
Status write_file_atomically(const std::string& path,
                             const std::function<void(std::ofstream&)>& body);

}  // namespace rpa::cases
