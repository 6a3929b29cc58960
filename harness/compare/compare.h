// Comparing an output against the reference, as tests, `rpa demo` and
// `rpa verify` do, with the tolerances of docs/contract.md §5.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "rpa/tensor.h"

namespace rpa {

// Allowed max abs error relative to max |reference out|, by input dtype.
constexpr double tolerance_for(DType input_dtype) {
  switch (input_dtype) {
    case DType::kBF16: return 2e-2;
    case DType::kF16: return 5e-3;
    default: return 2e-5;
  }
}

struct Comparison {
  double max_abs_error = 0.0;  // NaN/Inf in either output counts as +inf
  double max_abs_reference = 0.0;
  int64_t rows = 0;  // live token rows compared

  double relative_error() const {
    return max_abs_reference > 0.0 ? max_abs_error / max_abs_reference : max_abs_error;
  }
  bool within(double tolerance) const { return relative_error() <= tolerance; }
};

// Compares `got` with `want` (both shaped like q) over the rows of live slots
// only: rows of inactive slots and padding rows are never written.
inline Comparison compare_outputs(const TensorView& got, const TensorView& want,
                                  const int32_t* seq_lens, const int32_t* query_start_len,
                                  int64_t batch_capacity) {
  Comparison c;
  const int64_t heads = got.shape[1], group = got.shape[2], dim = got.shape[3];
  for (int64_t s = 0; s < batch_capacity; ++s) {
    if (seq_lens[s] == 0) continue;
    for (int64_t t = query_start_len[s]; t < query_start_len[s + 1]; ++t, ++c.rows) {
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t g = 0; g < group; ++g) {
          for (int64_t d = 0; d < dim; ++d) {
            const auto at = [&](const TensorView& v) {
              return t * v.strides[0] + h * v.strides[1] + g * v.strides[2] + d;
            };
            const double a = load_as_f32(got.data, got.dtype, at(got));
            const double b = load_as_f32(want.data, want.dtype, at(want));
            const double err = std::isfinite(a) && std::isfinite(b) ? std::fabs(a - b) : INFINITY;
            c.max_abs_error = std::max(c.max_abs_error, err);
            if (std::isfinite(b)) c.max_abs_reference = std::max(c.max_abs_reference, std::fabs(b));
          }
        }
      }
    }
  }
  return c;
}

}  // namespace rpa
