// The exponential of the online softmax: every argument is a score minus a
// running max (or an old max minus a new one), so never positive.

#if defined(RPA_CPU_EXP_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_EXP_INL_H_
#undef RPA_CPU_EXP_INL_H_
#else
#define RPA_CPU_EXP_INL_H_
#endif

#include "core/online_softmax.h"
#include "cpu/load-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

inline constexpr float kLog2e = 1.44269504088896341f;

// 2^t for t <= 0 (t = x log2 e), 0 for t = -inf and NaN for NaN: 2^round(t)
// times a degree-6 polynomial of the rest. Callers that already multiply
// their argument fold log2 e into that multiply.
HWY_INLINE VF Exp2NonPositive(DF df, VF t) {
  const VF floor = hn::Set(df, -125.0f);  // 2^-125: the result stays a normal float
#if HWY_TARGET <= HWY_AVX3
  // vmaxps returns its second operand when either is NaN, so a NaN t stays
  // NaN through every step below; vscalefps multiplies by 2^whole in one
  // instruction. 4 instructions fewer than the portable form, same bits.
  const VF clamped{_mm512_max_ps(floor.raw, t.raw)};
#else
  const VF clamped = hn::Max(t, floor);
#endif
  const VF whole = hn::Round(clamped);
  const VF f = hn::Sub(clamped, whole);  // in [-0.5, 0.5]
  VF p = hn::Set(df, 1.535336188319500e-4f);
  p = hn::MulAdd(p, f, hn::Set(df, 1.339887440266574e-3f));
  p = hn::MulAdd(p, f, hn::Set(df, 9.618437357674640e-3f));
  p = hn::MulAdd(p, f, hn::Set(df, 5.550332471162809e-2f));
  p = hn::MulAdd(p, f, hn::Set(df, 2.402264791363012e-1f));
  p = hn::MulAdd(p, f, hn::Set(df, 6.931472028550421e-1f));
  p = hn::MulAdd(p, f, hn::Set(df, 1.0f));
#if HWY_TARGET <= HWY_AVX3
  const VF r{_mm512_scalef_ps(p.raw, whole.raw)};
  return hn::IfThenZeroElse(hn::Eq(t, hn::Set(df, kNegInf)), r);
#else
  // p * 2^whole: whole added to the exponent bits of p (p in [0.7, 1.5]).
  const hn::RebindToSigned<DF> di;
  const VF r =
      hn::BitCast(df, hn::Add(hn::BitCast(di, p), hn::ShiftLeft<23>(hn::ConvertTo(di, whole))));
  // A NaN score (a NaN in q or in a live K row) must reach the output, not
  // vanish into the clamp.
  return hn::IfThenElse(hn::IsNaN(t), t, hn::IfThenZeroElse(hn::Eq(t, hn::Set(df, kNegInf)), r));
#endif
}

// exp(x) for x <= 0, 0 for x = -inf and NaN for NaN, within 2e-7 relative
// for x in [-2, 0]. The rounding of x log2 e adds a relative error of up to
// |x| 6e-8, which matters only where the result is tiny next to the
// softmax's largest p = 1. Half the instructions of hn::Exp, whose range
// reduction serves all x: the exps were 80% of DecodeSoftmax, and most of the
// prefill softmax.
HWY_INLINE VF ExpNonPositive(DF df, VF x) {
  return Exp2NonPositive(df, hn::Mul(x, hn::Set(df, kLog2e)));
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_EXP_INL_H_
