// The fp8 dequantization scales, k_scale and v_scale, as both their readers
// check them: attention (describe.cc) and the quantizing write_kv.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

#include "core/message.h"
#include "core/view_check.h"
#include "rpa/status.h"

namespace rpa {

inline constexpr ViewRule kKScaleRule = {"k_scale", 1, "[1] or [num_kv_heads]"};
inline constexpr ViewRule kVScaleRule = {"v_scale", 1, "[1] or [num_kv_heads]"};

// scale[h * stride] for h < count must be finite and positive: a zero,
// negative or non-finite scale turns every key of a head into 0, a sign flip
// or NaN (or, quantizing, writes such codes): always a quantizer's bug.
inline Status check_scale_values(const float* scale, int64_t stride, int64_t count,
                                 std::string_view name) {
  for (int64_t h = 0; h < count; ++h) {
    const float value = scale[h * stride];
    if (!(value > 0.0f) || !std::isfinite(value)) {
      return Status::Invalid(cat(name, "[", h, "] = ", value, " must be finite and positive"));
    }
  }
  return Status::Ok();
}

}  // namespace rpa
