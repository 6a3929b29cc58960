// The NumPy .npy format (numpy.lib.format, versions 1-3): a magic string, a
// version, a header length, a Python dict literal {'descr', 'fortran_order',
// 'shape'} padded with spaces, then the raw C-order data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rpa/status.h"

namespace rpa::cases {

// The element types rpa reads: '<f4', '<f2', '<i4', '<u2', which holds raw
// 16-bit patterns (bf16 or f16) since NumPy has no bf16 of its own, and '|u1',
// raw fp8 e4m3 bytes (NumPy has no fp8 either).
struct NpyArray {
  std::string descr;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Reads one array; rejects a bad magic, a header past the end, an unsupported
// descr, Fortran order, and data shorter or longer than the shape says.
Status read_npy(const std::string& path, NpyArray* array);

// Writes one array as version 1.0, the header padded so the data starts
// 64-byte aligned (as NumPy does). Atomic: see write_file_atomically.
Status write_npy(const std::string& path, const NpyArray& array);

}  // namespace rpa::cases
