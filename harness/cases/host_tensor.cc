#include "cases/host_tensor.h"

#include <cstring>

#include "core/message.h"

namespace rpa::cases {

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t extent : shape) n *= extent;
  return n;
}

Status HostTensor::view(const std::string& name, TensorView* view) const {
  if (shape.size() > static_cast<size_t>(kMaxRank)) {
    return Status::Invalid(cat("tensor '", name, "' has rank ", shape.size(),
                               "; rpa tensors have rank at most ", kMaxRank));
  }
  TensorView v;
  v.data = const_cast<uint8_t*>(bytes.data());
  v.dtype = dtype;
  v.rank = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int d = v.rank - 1; d >= 0; --d) {
    v.shape[d] = shape[d];
    v.strides[d] = stride;
    stride *= shape[d];
  }
  *view = v;
  return Status::Ok();
}

HostTensor HostTensor::copy_of(const TensorView& view) {
  HostTensor t;
  t.dtype = view.dtype;
  t.shape.assign(view.shape.begin(), view.shape.begin() + view.rank);
  const int64_t element = dtype_size(view.dtype);
  t.bytes.resize(static_cast<size_t>(t.numel() * element));
  if (t.bytes.empty()) return t;
  // Walk the view's elements in row-major order with an odometer over its
  // indices, so any rank and any strides take the same path.
  std::array<int64_t, kMaxRank> index{};
  const auto* source = static_cast<const uint8_t*>(view.data);
  for (int64_t i = 0, n = t.numel(); i < n; ++i) {
    int64_t offset = 0;
    for (int d = 0; d < view.rank; ++d) offset += index[d] * view.strides[d];
    std::memcpy(t.bytes.data() + i * element, source + offset * element, element);
    for (int d = view.rank - 1; d >= 0 && ++index[d] == view.shape[d]; --d) index[d] = 0;
  }
  return t;
}

}  // namespace rpa::cases
