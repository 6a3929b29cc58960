// How far one benchmark output is from another: a benchmark of a wrong result
// would be meaningless, so every timed output is checked against a second
// computation of the same batch (cpu_runner.cc against gather-dense,
// cuda_runner.cc against the cpu backend).
#pragma once

#include <cstdint>
#include <vector>

#include "generate/batch.h"

namespace rpa::bench {

// The values of a batch's output in its live rows, which come first.
int64_t live_elements(const gen::Batch& batch);

// max |a − b| / max |b| over the first `elements` values of two outputs; NaN
// when either holds a NaN there (JSON: null).
double relative_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                           DType dtype, int64_t elements);

}  // namespace rpa::bench
