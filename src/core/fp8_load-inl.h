// Per-target SIMD decode of fp8 e4m3 bytes to f32, shared by the CPU backend
// and the capacity-masked baseline.
//
// e4m3's exponent and mantissa bits, shifted into f32's fields, read as the
// byte's value times 2^-120 (f32's exponent bias is 127, e4m3's 7), and its
// subnormals land on f32 subnormals with the same factor: a sign extension,
// a shift and a mask decode a byte (three instructions per vector, against
// two for bf16). The only code this misreads is NaN (S.1111.111), whose image
// 1.875 * 2^-112 no finite e4m3 value reaches: LoadFp8 selects it back to NaN;
// LoadFp8Raw leaves that to its caller, who can check far more cheaply for
// the NaN codes a healthy cache never holds (Fp8FoldMagnitudes: two vector
// instructions per 32 codes on AVX2).

// Per-target include guard, as Highway's foreach_target.h requires.
#if defined(RPA_CORE_FP8_LOAD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CORE_FP8_LOAD_INL_H_
#undef RPA_CORE_FP8_LOAD_INL_H_
#else
#define RPA_CORE_FP8_LOAD_INL_H_
#endif

#include <cstdint>

#include "core/fp8.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lanes(df) fp8 values at p, as f32 times 2^-120 (kFp8RawHalfFactor^-2);
// NaN codes read as +-1.875 * 2^-112.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadFp8Raw(DF df, const Fp8E4M3* HWY_RESTRICT p) {
  const hn::Rebind<int8_t, DF> di8;
  const hn::RebindToSigned<DF> di32;
  // Sign-extended, the sign fills bits 31..7; shifted by 20 it is bit 31 and
  // bits 30..27 are cleared by the mask, leaving s.0000eeee.mmm000...
  const auto bytes = hn::PromoteTo(di32, hn::LoadU(di8, reinterpret_cast<const int8_t*>(p)));
  return hn::BitCast(df, hn::And(hn::ShiftLeft<20>(bytes), hn::Set(di32, int32_t(0x87F00000u))));
}

// Lanes(df) fp8 values at p, exactly, NaN included.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadFp8(DF df, const Fp8E4M3* HWY_RESTRICT p) {
  const auto raw = LoadFp8Raw(df, p);
  const auto nan = hn::Eq(hn::Abs(raw), hn::Set(df, 0x1.ep-112f));
  return hn::IfThenElse(nan, hn::NaN(df), hn::Mul(raw, hn::Set(df, 0x1p120f)));
}

// The NaN scan of fp8 rows, run by a kernel on each row right after it used
// the row (from L1): with the sign masked off, NaN (S.1111.111) is the
// largest code, 0x7f, so a running byte-wise max of the magnitudes finds it
// in two instructions per vector. A tail shorter than a vector (head_dim 80
// or 96 on 32-byte vectors) is checked eight bytes at a time instead.
using DU8 = hn::ScalableTag<uint8_t>;

HWY_INLINE hn::Vec<DU8> Fp8FoldMagnitudes(const Fp8E4M3* HWY_RESTRICT row, int64_t n,
                                          hn::Vec<DU8> largest, bool& tail_nan) {
  const DU8 du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(du8));
  const auto magnitude = hn::Set(du8, uint8_t{0x7f});
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(row);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    largest = hn::Max(largest, hn::And(hn::LoadU(du8, bytes + i), magnitude));
  }
  if (i < n) tail_nan |= fp8_e4m3_has_nan(row + i, n - i);
  return largest;
}

HWY_INLINE bool Fp8ScanFoundNaN(hn::Vec<DU8> largest, bool tail_nan) {
  const DU8 du8;
  return tail_nan || !hn::AllFalse(du8, hn::Eq(largest, hn::Set(du8, uint8_t{0x7f})));
}

}  // namespace rpa::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CORE_FP8_LOAD_INL_H_
