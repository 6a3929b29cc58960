#include "rpa/dtype.h"

namespace rpa {

bool parse_dtype(std::string_view name, DType* out) {
  if (name == "fp8") name = dtype_name(DType::kF8E4M3);
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kF8E4M3}) {
    if (dtype_name(t) == name) {
      *out = t;
      return true;
    }
  }
  return false;
}

}  // namespace rpa
