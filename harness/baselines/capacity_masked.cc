// The capacity-masked baseline (baselines.h), compiled once per instruction
// set by Highway's foreach_target and dispatched once per call.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "baselines/baselines.h"
#include "baselines/operands.h"
#include "core/fp8.h"
#include "core/online_softmax.h"
#include "core/problem.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "baselines/capacity_masked.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Per-target headers: foreach_target.h re-includes this file once per target.
#include "core/fp8_load-inl.h"
#include "hwy/aligned_allocator.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::baselines {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Loads Lanes(df) elements of T as f32 (bf16, f16 and fp8 are widened).
template <typename T>
HWY_INLINE hn::Vec<DF> LoadF32(DF df, const T* HWY_RESTRICT p) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(df, p);
  } else if constexpr (std::is_same_v<T, Fp8E4M3>) {
    return rpa::HWY_NAMESPACE::LoadFp8(df, p);
  } else {
    const hn::Rebind<T, DF> dt;
    return hn::PromoteTo(df, hn::LoadU(dt, p));
  }
}

// q·k over `dim` values; every supported head_dim is a multiple of 16 lanes.
template <typename T>
HWY_INLINE float Dot(DF df, const float* HWY_RESTRICT q, const T* HWY_RESTRICT k, int64_t dim) {
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  auto sum0 = hn::Zero(df);
  auto sum1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * n <= dim; i += 2 * n) {
    sum0 = hn::MulAdd(hn::LoadU(df, q + i), LoadF32(df, k + i), sum0);
    sum1 = hn::MulAdd(hn::LoadU(df, q + i + n), LoadF32(df, k + i + n), sum1);
  }
  for (; i < dim; i += n) sum0 = hn::MulAdd(hn::LoadU(df, q + i), LoadF32(df, k + i), sum0);
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(sum0, sum1)));
}

// Per-thread buffers for one (slot, kv_head): the GQA group's f32 query rows and
// accumulators [heads_per_kv][head_dim], and its page of scores/probabilities
// [heads_per_kv][padded page_size]. A page shorter than a vector leaves padding
// lanes, which each page sets to -inf before its softmax (SlotHead).
struct Scratch {
  Scratch(int64_t heads_per_kv, int64_t head_dim, int64_t padded_page)
      : q(hwy::AllocateAligned<float>(heads_per_kv * head_dim)),
        o(hwy::AllocateAligned<float>(heads_per_kv * head_dim)),
        score(hwy::AllocateAligned<float>(heads_per_kv * padded_page)),
        state(heads_per_kv) {}
  hwy::AlignedFreeUniquePtr<float[]> q, o, score;
  std::vector<RowState> state;
};

// Folds one page of scores into the states of the group and turns them into
// probabilities in place: p = exp(x - m_new), selected to 0 where x = -inf (an
// invisible key or a padding lane) so that an all-masked page gives no NaN.
HWY_INLINE void SoftmaxPage(DF df, int64_t heads, int64_t head_dim, int64_t padded_page,
                            Scratch& scratch) {
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const auto neg_inf = hn::Set(df, kNegInf);
  for (int64_t g = 0; g < heads; ++g) {
    float* HWY_RESTRICT score = scratch.score.get() + g * padded_page;
    auto vmax = neg_inf;
    for (int64_t c = 0; c < padded_page; c += n) vmax = hn::Max(vmax, hn::Load(df, score + c));
    RowState& s = scratch.state[g];
    const float m = std::fmax(s.m, hn::GetLane(hn::MaxOfLanes(df, vmax)));
    const float alpha = rescale_factor(s.m, m);
    const auto vm = hn::Set(df, m);
    auto vsum = hn::Zero(df);
    for (int64_t c = 0; c < padded_page; c += n) {
      const auto x = hn::Load(df, score + c);
      const auto p = hn::IfThenZeroElse(hn::Eq(x, neg_inf), hn::Exp(df, hn::Sub(x, vm)));
      hn::Store(p, df, score + c);
      vsum = hn::Add(vsum, p);
    }
    s.l = s.l * alpha + hn::GetLane(hn::SumOfLanes(df, vsum));
    s.m = m;
    float* HWY_RESTRICT o = scratch.o.get() + g * head_dim;
    const auto va = hn::Set(df, alpha);
    for (int64_t d = 0; d < head_dim; d += n)
      hn::Store(hn::Mul(hn::Load(df, o + d), va), df, o + d);
  }
}

// T is the caches' element type; q is converted to f32 whatever its dtype.
// An fp8 head's K scale is folded into q and its V scale into o at the end.
template <typename T>
void SlotHead(const Problem& pr, const Operands& op, int64_t s, int64_t h, Scratch& scratch) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const int64_t heads = pr.heads_per_kv, dim = pr.head_dim, page_size = pr.page_size;
  const int64_t padded_page = hwy::RoundUpTo(page_size, n);
  const T* k = static_cast<const T*>(op.k);
  const T* v = static_cast<const T*>(op.v);
  const bool active = pr.active(s);
  const int64_t rows = active ? pr.q_len(s) : 1;
  const int64_t context = active ? pr.context_len(s) : 0;
  const int32_t* block_row = pr.pages_of(s);

  for (int64_t i = 0; i < rows; ++i) {
    const int64_t t = pr.query_start_len[s] + i;
    const int64_t pos = context + i;
    // Keys [lo, hi) are visible to this row; an inactive slot's dummy row sees none.
    const int64_t hi = active ? pos + 1 : 0;
    const int64_t lo = pr.sliding_window > 0 ? pos - pr.sliding_window + 1 : 0;
    for (int64_t g = 0; g < heads; ++g) {
      float* q = scratch.q.get() + g * dim;
      if (active) {
        load_row_f32(op.q, op.dtype, op.q_at(t, h, g), dim, q);
        if constexpr (std::is_same_v<T, Fp8E4M3>) {
          const float k_factor = pr.k_scale_of(h);
          for (int64_t d = 0; d < dim; ++d) q[d] *= k_factor;
        }
      } else {
        std::fill_n(q, dim, 0.0f);
      }
      scratch.state[g] = RowState{};
    }
    std::fill_n(scratch.o.get(), heads * dim, 0.0f);

    for (int64_t p = 0; p < pr.max_pages_per_seq; ++p) {
      const int32_t id = block_row[p];
      const int64_t page = (id >= 0 && id < pr.num_pages) ? id : 0;
      const int64_t key0 = p * page_size;
      for (int64_t j = 0; j < page_size; ++j) {
        const T* krow = k + op.k_at(page, j, h);
        const bool visible = key0 + j >= lo && key0 + j < hi;
        for (int64_t g = 0; g < heads; ++g) {
          const float x = transform_logit(Dot(df, scratch.q.get() + g * dim, krow, dim), pr.scale,
                                          pr.logit_soft_cap);
          scratch.score[g * padded_page + j] = visible ? x : kNegInf;
        }
      }
      // SoftmaxPage turned the previous page's padding lanes into p = 0; as
      // scores they must be -inf again, or they would join the max and the sum.
      for (int64_t g = 0; g < heads; ++g) {
        std::fill(scratch.score.get() + g * padded_page + page_size,
                  scratch.score.get() + (g + 1) * padded_page, kNegInf);
      }
      SoftmaxPage(df, heads, dim, padded_page, scratch);
      // o += p · v. Invisible V rows are zeroed by a select as well: their p is
      // 0, but 0 · NaN would still poison o.
      for (int64_t j = 0; j < page_size; ++j) {
        const T* vrow = v + op.v_at(page, j, h);
        const bool visible = key0 + j >= lo && key0 + j < hi;
        const auto keep = hn::FirstN(df, visible ? static_cast<size_t>(n) : 0);
        for (int64_t d = 0; d < dim; d += n) {
          const auto vv = hn::IfThenElseZero(keep, LoadF32(df, vrow + d));
          for (int64_t g = 0; g < heads; ++g) {
            float* o = scratch.o.get() + g * dim + d;
            const auto pv = hn::Set(df, scratch.score[g * padded_page + j]);
            hn::Store(hn::MulAdd(pv, vv, hn::Load(df, o)), df, o);
          }
        }
      }
    }
    if (!active) continue;
    for (int64_t g = 0; g < heads; ++g) {
      float* o = scratch.o.get() + g * dim;
      const float* sink = pr.sinks != nullptr ? pr.sinks + h * heads + g : nullptr;
      if constexpr (std::is_same_v<T, Fp8E4M3>) {
        const float v_factor = pr.v_scale_of(h);
        for (int64_t d = 0; d < dim; ++d) o[d] *= v_factor;
      }
      const float lse = finalize_state(scratch.state[g], o, dim, sink);
      store_row(o, dim, op.out, op.out_dtype, op.out_at(t, h, g));
      if (op.lse != nullptr) op.lse[op.lse_at(t, h, g)] = lse;
    }
  }
}

template <typename T>
void RunTyped(const Problem& pr, const Operands& op, int64_t begin, int64_t end, int threads) {
  const DF df;
  const int64_t padded_page = hwy::RoundUpTo(pr.page_size, hn::Lanes(df));
  const int64_t work = (end - begin) * pr.num_kv_heads;
#pragma omp parallel num_threads(threads)
  {
    Scratch scratch(pr.heads_per_kv, pr.head_dim, padded_page);
#pragma omp for schedule(dynamic, 1)
    for (int64_t w = 0; w < work; ++w) {
      SlotHead<T>(pr, op, begin + w / pr.num_kv_heads, w % pr.num_kv_heads, scratch);
    }
  }
}

void RunCapacityMasked(const Problem& pr, const Operands& op, int64_t begin, int64_t end,
                       int threads) {
  switch (pr.kv_dtype) {
    case DType::kF8E4M3:
      return RunTyped<Fp8E4M3>(pr, op, begin, end, threads);
    case DType::kBF16:
      return RunTyped<hwy::bfloat16_t>(pr, op, begin, end, threads);
    case DType::kF16:
      return RunTyped<hwy::float16_t>(pr, op, begin, end, threads);
    default:
      return RunTyped<float>(pr, op, begin, end, threads);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace rpa::baselines
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rpa::baselines {

HWY_EXPORT(RunCapacityMasked);

namespace {

// Resolves end = -1 and clamps the range to [0, batch_capacity].
SlotRange resolve(SlotRange slots, int64_t capacity) {
  const int64_t end = slots.end < 0 ? capacity : std::min(slots.end, capacity);
  return {std::clamp<int64_t>(slots.begin, 0, end), end};
}

}  // namespace

Status capacity_masked(const AttentionInputs& inputs, const AttentionOptions& options,
                       const AttentionOutputs& outputs, const BaselineConfig& config,
                       SlotRange slots) {
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, &outputs, &problem));
  const SlotRange range = resolve(slots, problem.batch_capacity);
  const int threads = config.threads > 0 ? config.threads : omp_get_max_threads();
  const Operands op = Operands::from(problem, inputs, outputs);
  HWY_DYNAMIC_DISPATCH(RunCapacityMasked)(problem, op, range.begin, range.end, threads);
  return Status::Ok();
}

int64_t capacity_masked_rows(const AttentionInputs& inputs, SlotRange slots) {
  const SlotRange range = resolve(slots, inputs.seq_lens.numel());
  const int32_t* seq_lens = inputs.seq_lens.as<const int32_t>();
  const int32_t* starts = inputs.query_start_len.as<const int32_t>();
  int64_t rows = 0;
  for (int64_t s = range.begin; s < range.end; ++s) {
    const int64_t q_len = starts[s + 1] - starts[s];
    rows += (seq_lens[s] > 0 && q_len > 0) ? q_len : 1;
  }
  return rows;
}

}  // namespace rpa::baselines
#endif  // HWY_ONCE
