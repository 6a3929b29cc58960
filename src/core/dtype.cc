#include "rpa/dtype.h"

namespace rpa {

bool parse_dtype(std::string_view name, DType* out) {
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32}) {
    if (dtype_name(t) == name) {
      *out = t;
      return true;
    }
  }
  return false;
}

}  // namespace rpa
