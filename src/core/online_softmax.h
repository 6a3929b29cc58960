// The one online-softmax state and merge shared by every fast path.
//
// A query row's state over the keys seen so far is (m, l, o): m the largest
// logit, l = Σ exp(x - m), o = Σ exp(x - m) · v (unnormalized), all f32. The
// empty state is m = -inf, l = 0, o = 0. Rescale factors are computed as
// exp(m_old - m_new) only when m_old is finite, so folding into or merging with
// an empty state never evaluates exp(-inf - -inf) = NaN.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/host_device.h"

namespace rpa {

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct RowState {
  float m = kNegInf;
  float l = 0.0f;
};

// exp(from - to) for rescaling a state whose max was `from` to the max `to >= from`.
// Host and device (the cuda kernels fold and merge with it too); expf and
// tanhf below are the C functions that std::exp and std::tanh of a float call.
RPA_HOST_DEVICE float rescale_factor(float from, float to) {
  return from == kNegInf ? 0.0f : expf(from - to);
}

// The logit soft cap: cap * tanh(x / cap), or x when cap is 0.
RPA_HOST_DEVICE float soft_cap(float x, float cap) { return cap > 0.0f ? cap * tanhf(x / cap) : x; }

// Merges state b = (mb, lb, ob) into a = (ma, la, oa), both over head_dim values.
inline void merge_state(RowState& a, float* oa, const RowState& b, const float* ob, int64_t head_dim) {
  if (b.m == kNegInf) return;  // b saw no key
  const float m = std::fmax(a.m, b.m);
  const float fa = rescale_factor(a.m, m);
  const float fb = rescale_factor(b.m, m);
  for (int64_t d = 0; d < head_dim; ++d) oa[d] = oa[d] * fa + ob[d] * fb;
  a.l = a.l * fa + b.l * fb;
  a.m = m;
}

// Finishes a row: out = o / l, with an optional sink logit joining the
// denominator only. Returns the natural-log denominator (lse), max-shifted back.
// A row with no keys and no sink (never the case for a live row, which always
// sees itself) gives out = 0 and lse = -inf.
inline float finalize_state(RowState s, float* o, int64_t head_dim, const float* sink) {
  if (sink != nullptr) {
    const float m = std::fmax(s.m, *sink);
    const float f = rescale_factor(s.m, m);
    for (int64_t d = 0; d < head_dim; ++d) o[d] *= f;
    s.l = s.l * f + std::exp(*sink - m);
    s.m = m;
  }
  const float inv = s.l > 0.0f ? 1.0f / s.l : 0.0f;
  for (int64_t d = 0; d < head_dim; ++d) o[d] *= inv;
  return s.l > 0.0f ? s.m + std::log(s.l) : kNegInf;
}

// Applies the logit transform of the options to a raw dot product q·k.
inline float transform_logit(float dot, float scale, float cap) { return soft_cap(dot * scale, cap); }

}  // namespace rpa
