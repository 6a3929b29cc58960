#include "bench/output_diff.h"

#include <algorithm>
#include <cmath>

namespace rpa::bench {

int64_t live_elements(const gen::Batch& batch) {
  const gen::BatchSpec& spec = batch.spec;
  return batch.live_rows() * spec.num_kv_heads * spec.heads_per_kv * spec.head_dim;
}

double relative_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                           DType dtype, int64_t elements) {
  double diff = 0.0, scale = 0.0;
  for (int64_t i = 0; i < elements; ++i) {
    const double x = load_as_f32(a.data(), dtype, i), y = load_as_f32(b.data(), dtype, i);
    // std::max drops a NaN operand, which would hide the worst possible output.
    if (std::isnan(x) || std::isnan(y)) return std::nan("");
    diff = std::max(diff, std::fabs(x - y));
    scale = std::max(scale, std::fabs(y));
  }
  return scale > 0.0 ? diff / scale : diff;
}

}  // namespace rpa::bench
