// cat(): builds an error message from pieces, the way every check in core
// writes "tensor[index] = value ..." without a formatting library.
#pragma once

#include <sstream>
#include <string>

#include "rpa/dtype.h"

namespace rpa {
namespace message_detail {

template <typename T>
void append(std::ostringstream& os, const T& piece) {
  os << piece;
}

// Dtypes appear in messages by name ("bf16"), never as their enum value.
inline void append(std::ostringstream& os, DType t) { os << dtype_name(t); }

}  // namespace message_detail

template <typename... Pieces>
std::string cat(const Pieces&... pieces) {
  std::ostringstream os;
  (message_detail::append(os, pieces), ...);
  return os.str();
}

}  // namespace rpa
