// Per-instruction-set loops of the machine limits (machine_kernels.h),
// compiled once per target by Highway's foreach_target and dispatched once.
#include <cstddef>
#include <cstdint>

#include "bench/machine_kernels.h"
#include "rpa/dtype.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/machine_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Per-target headers: foreach_target.h re-includes this file once per target.
#include "hwy/highway.h"
#include "hwy/targets.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Four independent accumulators: one add per loaded vector then never waits
// on the previous add, so the loop runs at the speed of the loads.
float SumFloats(const float* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    s0 = hn::Add(s0, hn::LoadU(d, p + i));
    s1 = hn::Add(s1, hn::LoadU(d, p + i + lanes));
    s2 = hn::Add(s2, hn::LoadU(d, p + i + 2 * lanes));
    s3 = hn::Add(s3, hn::LoadU(d, p + i + 3 * lanes));
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += p[i];
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)))) + tail;
}

// Twelve chains x = x * a + b held in registers. Current x86 cores retire two
// FMAs per cycle with a 4-cycle latency, so at least 8 independent chains are
// needed to keep both pipes busy; 12 leave a margin and still fit in the 16
// AVX2 registers with a and b.
KernelWork FmaChains(int64_t iters) {
  constexpr int kChains = 12;
  const hn::ScalableTag<float> d;
  const auto a = hn::Set(d, 0.999999f);
  const auto b = hn::Set(d, 1e-7f);
  hn::Vec<decltype(d)> x[kChains];
  for (int c = 0; c < kChains; ++c) x[c] = hn::Set(d, 1.0f + 0.01f * static_cast<float>(c));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) x[c] = hn::MulAdd(x[c], a, b);
  }
  auto sum = hn::Zero(d);
  for (int c = 0; c < kChains; ++c) sum = hn::Add(sum, x[c]);
  const double flops =
      2.0 * kChains * static_cast<double>(hn::Lanes(d)) * static_cast<double>(iters);
  return {flops, hn::GetLane(hn::SumOfLanes(d, sum))};
}

// The bf16 dot product a kernel without native bf16 arithmetic runs: each
// vector of bf16 pairs is split into its even and odd halves (shift, and) and
// both are FMA-accumulated in f32. The operands come from an L1-resident
// buffer so that the widening cannot be hoisted out of the loop. Four pairs of
// accumulators (eight FMA chains) cover the FMA latency.
KernelWork Bf16Dot(const uint16_t* HWY_RESTRICT a, const uint16_t* HWY_RESTRICT b, size_t n,
                   int64_t passes) {
#if HWY_TARGET == HWY_SCALAR
  // One lane cannot hold a bf16 pair: widen each element on its own.
  float sum = 0.0f;
  for (int64_t pass = 0; pass < passes; ++pass) {
    for (size_t i = 0; i < n; ++i) sum += bf16_to_f32(a[i]) * bf16_to_f32(b[i]);
  }
  return {2.0 * static_cast<double>(n) * static_cast<double>(passes), sum};
#else
  constexpr int kPairs = 4;
  const hn::ScalableTag<float> df;
  const hn::Repartition<hwy::bfloat16_t, decltype(df)> dbf;
  const size_t lanes = hn::Lanes(dbf);
  const hwy::bfloat16_t* pa = reinterpret_cast<const hwy::bfloat16_t*>(a);
  const hwy::bfloat16_t* pb = reinterpret_cast<const hwy::bfloat16_t*>(b);
  hn::Vec<decltype(df)> sum0[kPairs], sum1[kPairs];
  for (int c = 0; c < kPairs; ++c) sum0[c] = sum1[c] = hn::Zero(df);
  for (int64_t pass = 0; pass < passes; ++pass) {
    for (size_t i = 0; i + kPairs * lanes <= n; i += kPairs * lanes) {
#pragma GCC unroll 4
      for (int c = 0; c < kPairs; ++c) {
        sum0[c] =
            hn::ReorderWidenMulAccumulate(df, hn::LoadU(dbf, pa + i + c * lanes),
                                          hn::LoadU(dbf, pb + i + c * lanes), sum0[c], sum1[c]);
      }
    }
  }
  auto sum = hn::Zero(df);
  for (int c = 0; c < kPairs; ++c) sum = hn::Add(sum, hn::Add(sum0[c], sum1[c]));
  return {2.0 * static_cast<double>(n) * static_cast<double>(passes),
          hn::GetLane(hn::SumOfLanes(df, sum))};
#endif
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace rpa::bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rpa::bench {

HWY_EXPORT(SumFloats);
HWY_EXPORT(FmaChains);
HWY_EXPORT(Bf16Dot);
HWY_EXPORT(TargetName);

float sum_floats(const float* p, size_t n) { return HWY_DYNAMIC_DISPATCH(SumFloats)(p, n); }

KernelWork fma_chains(int64_t iters) { return HWY_DYNAMIC_DISPATCH(FmaChains)(iters); }

KernelWork bf16_widening_dot(const uint16_t* a, const uint16_t* b, size_t n, int64_t passes) {
  return HWY_DYNAMIC_DISPATCH(Bf16Dot)(a, b, n, passes);
}

const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace rpa::bench
#endif  // HWY_ONCE
