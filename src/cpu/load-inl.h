// Per-target loads of q, K and V elements as f32: the one place where the
// element type becomes SIMD code. bf16 widens by a 16-bit shift, f16 through
// PromoteTo (F16C on AVX2), f32 loads as is, fp8 e4m3 by the raw decode of
// core/fp8_load-inl.h (its value times 2^-120: callers undo the factor).

// Per-target include guard, as Highway's foreach_target.h requires.
#if defined(RPA_CPU_LOAD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_LOAD_INL_H_
#undef RPA_CPU_LOAD_INL_H_
#else
#define RPA_CPU_LOAD_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/support.h"
#include "core/fp8.h"
#include "core/fp8_load-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// f32 vectors of at most 16 lanes. Every supported head_dim is a multiple of
// 16, so a row of head_dim floats is always a whole number of vectors.
using DF = hn::CappedTag<float, 16>;
using VF = hn::Vec<DF>;
using DI = hn::RebindToSigned<DF>;

constexpr bool all_head_dims_multiple_of_16() {
  for (int64_t dim : kSupportedHeadDims) {
    if (dim % 16 != 0) return false;
  }
  return true;
}
static_assert(all_head_dims_multiple_of_16(),
              "the CPU kernels walk head_dim in whole vectors of up to 16 f32 lanes");

inline constexpr int64_t kMaxHeadDim = kMaxSupportedHeadDim;

HWY_INLINE VF LoadF32(DF df, const float* HWY_RESTRICT p) { return hn::LoadU(df, p); }

HWY_INLINE VF LoadF32(DF df, const hwy::bfloat16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::RebindToUnsigned<DF> du32;
  const auto bits = hn::PromoteTo(du32, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  return hn::BitCast(df, hn::ShiftLeft<16>(bits));
}

HWY_INLINE VF LoadF32(DF df, const hwy::float16_t* HWY_RESTRICT p) {
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::PromoteTo(df, hn::LoadU(df16, p));
}

HWY_INLINE VF LoadF32(DF df, const Fp8E4M3* HWY_RESTRICT p) {
  return rpa::HWY_NAMESPACE::LoadFp8Raw(df, p);
}

// Loads 2 * Lanes elements at p as two f32 vectors. bf16 loads them with one
// full-width load and splits each 32-bit pair by a shift and a mask, which
// yields the even elements in `a` and the odd ones in `b` ("pair order");
// f32 and f16 yield them in order. Rows that meet such K/V rows in a dot
// product or an axpy (decode's q and o) are kept in the same order.
HWY_INLINE void LoadPair(DF df, const float* HWY_RESTRICT p, VF& a, VF& b) {
  a = hn::LoadU(df, p);
  b = hn::LoadU(df, p + hn::Lanes(df));
}

HWY_INLINE void LoadPair(DF df, const hwy::float16_t* HWY_RESTRICT p, VF& a, VF& b) {
  a = LoadF32(df, p);
  b = LoadF32(df, p + hn::Lanes(df));
}

HWY_INLINE void LoadPair(DF df, const Fp8E4M3* HWY_RESTRICT p, VF& a, VF& b) {
  a = LoadF32(df, p);
  b = LoadF32(df, p + hn::Lanes(df));
}

// One-lane vectors (HWY_SCALAR) hold no pair; there bf16 loads in order.
#if HWY_TARGET == HWY_SCALAR
inline constexpr bool kBF16Pairs = false;
HWY_INLINE void LoadPair(DF df, const hwy::bfloat16_t* HWY_RESTRICT p, VF& a, VF& b) {
  a = LoadF32(df, p);
  b = LoadF32(df, p + hn::Lanes(df));
}
#else
inline constexpr bool kBF16Pairs = true;
HWY_INLINE void LoadPair(DF df, const hwy::bfloat16_t* HWY_RESTRICT p, VF& a, VF& b) {
  const hn::Repartition<uint16_t, DF> du16;
  const hn::RebindToUnsigned<DF> du32;
  const auto pairs = hn::BitCast(du32, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  a = hn::BitCast(df, hn::ShiftLeft<16>(pairs));
  b = hn::BitCast(df, hn::And(pairs, hn::Set(du32, 0xFFFF0000u)));
}
#endif

template <typename T>
inline constexpr bool kPairOrder = kBF16Pairs&& std::is_same_v<T, hwy::bfloat16_t>;

// Moves row[0, dim) into or out of the order LoadPair<T> yields: within each
// block of 2 * Lanes elements, the even ones then the odd ones. A tail of
// fewer than 2 * Lanes elements (head_dim 80 with 16 lanes) is loaded
// without LoadPair and stays in order. `tmp` holds dim floats.
template <typename T>
HWY_INLINE void ToPairOrder(float* HWY_RESTRICT row, int64_t dim, float* HWY_RESTRICT tmp) {
  if constexpr (kPairOrder<T>) {
    const int64_t block = 2 * static_cast<int64_t>(hn::Lanes(DF()));
    std::copy(row, row + dim, tmp);
    for (int64_t d0 = 0; d0 + block <= dim; d0 += block) {
      for (int64_t j = 0; j < block / 2; ++j) {
        row[d0 + j] = tmp[d0 + 2 * j];
        row[d0 + block / 2 + j] = tmp[d0 + 2 * j + 1];
      }
    }
  }
}

template <typename T>
HWY_INLINE void FromPairOrder(float* HWY_RESTRICT row, int64_t dim, float* HWY_RESTRICT tmp) {
  if constexpr (kPairOrder<T>) {
    const int64_t block = 2 * static_cast<int64_t>(hn::Lanes(DF()));
    std::copy(row, row + dim, tmp);
    for (int64_t d0 = 0; d0 + block <= dim; d0 += block) {
      for (int64_t j = 0; j < block / 2; ++j) {
        row[d0 + 2 * j] = tmp[d0 + j];
        row[d0 + 2 * j + 1] = tmp[d0 + block / 2 + j];
      }
    }
  }
}

// dst[d] = scale * src[d] for d < dim.
template <typename T>
HWY_INLINE void WidenRow(const T* HWY_RESTRICT src, float scale, int64_t dim,
                         float* HWY_RESTRICT dst) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF vscale = hn::Set(df, scale);
  for (int64_t d = 0; d < dim; d += lanes) {
    hn::StoreU(hn::Mul(LoadF32(df, src + d), vscale), df, dst + d);
  }
}

// dst[d] = src[d] for d < dim.
template <typename T>
HWY_INLINE void WidenRow(const T* HWY_RESTRICT src, int64_t dim, float* HWY_RESTRICT dst) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t d = 0; d < dim; d += lanes) hn::StoreU(LoadF32(df, src + d), df, dst + d);
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_LOAD_INL_H_
