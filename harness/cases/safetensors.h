// The safetensors format (huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON header, then the tensor data. The header maps
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} with
// offsets relative to the data start, and may hold "__metadata__", a map of
// strings to strings. rpa reads and writes the dtypes F32, BF16, F16 and I32.
#pragma once

#include <istream>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cases/host_tensor.h"

namespace rpa::cases {

struct SafetensorsFile {
  std::vector<std::pair<std::string, HostTensor>> tensors;  // in data order
  std::map<std::string, std::string> metadata;

  const HostTensor* find(std::string_view name) const;
};

// Reads and checks a whole file as the format demands: the header fits the
// file, is a JSON object of well-formed entries, and the tensors' byte ranges
// tile the data exactly (no overlap, no gap, nothing past the end, no trailing
// bytes), each as long as its shape and dtype say.
Status read_safetensors(const std::string& path, SafetensorsFile* file);

// The same from a seekable stream of `size` bytes (in-memory data, tests);
// messages then name no file.
Status read_safetensors(std::istream& in, int64_t size, SafetensorsFile* file);

// Writes the tensors in order, the header padded with spaces to a multiple of
// 8 bytes so every tensor's data starts 8-byte aligned. Atomic: see
// write_file_atomically.
Status write_safetensors(const std::string& path, const SafetensorsFile& file);

}  // namespace rpa::cases
