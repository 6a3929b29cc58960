// The inner loops behind the machine limits (machine.h). Each returns the
// work it did next to a value derived from every result, which the caller
// keeps so that the compiler cannot drop the loop.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rpa::bench {

struct KernelWork {
  double flops = 0.0;
  float sink = 0.0f;
};

// Σ p[0, n) with vector loads (machine_simd.cc, best instruction set).
float sum_floats(const float* p, size_t n);

// `iters` steps of independent FMA chains held in registers.
KernelWork fma_chains(int64_t iters);

// `passes` dot products of the bf16 vectors a, b of n elements (n a multiple
// of 256), each bf16 pair widened to f32 and fused-multiply-added.
KernelWork bf16_widening_dot(const uint16_t* a, const uint16_t* b, size_t n, int64_t passes);

// The instruction set Highway dispatches to on this CPU, e.g. "AVX2".
const char* simd_target_name();

// bf16_native.cc, run only where cpu/cpu_features.h says the extension is
// usable: `iters` steps of independent vdpbf16ps chains held in registers
// (the AVX512_BF16 peak), and of four AMX tile products (the AMX-BF16 peak).
KernelWork bf16_vdpbf16ps_chains(int64_t iters);
KernelWork bf16_amx_tiles(int64_t iters);

}  // namespace rpa::bench
