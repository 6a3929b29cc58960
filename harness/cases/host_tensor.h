// HostTensor: an owned, dense, row-major tensor as case files store it. The
// file formats allow any rank; views() for the attention API need rank <= 4.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa::cases {

struct HostTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel() * dtype_size(dtype) bytes, row-major

  int64_t numel() const;

  // A view of the bytes; fails (naming `name`) when the rank exceeds kMaxRank.
  Status view(const std::string& name, TensorView* view) const;

  // Copies a (possibly strided) view into a dense tensor.
  static HostTensor copy_of(const TensorView& view);
};

}  // namespace rpa::cases
