// The gather-dense baseline (baselines.h): gather into contiguous f32, then
// dense attention with two OpenBLAS sgemms around a masked softmax, compiled
// once per instruction set (Highway foreach_target) and dispatched once per call.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "baselines/baselines.h"
#include "baselines/operands.h"
#include "core/online_softmax.h"
#include "core/problem.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "baselines/gather_dense.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Per-target headers: foreach_target.h re-includes this file once per target.
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::baselines {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One row of S (n scaled logits) becomes unnormalized probabilities: keys
// [a, b) are visible and get exp(x - m); every other entry becomes 0, so P·V
// ignores them (all gathered keys are live, hence finite). Returns (m, l).
RowState SoftmaxRow(float* HWY_RESTRICT row, int64_t n, int64_t a, int64_t b, float soft_cap) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  std::fill(row, row + a, 0.0f);
  std::fill(row + b, row + n, 0.0f);
  if (soft_cap > 0.0f) {
    const auto cap = hn::Set(df, soft_cap);
    const auto inv_cap = hn::Set(df, 1.0f / soft_cap);
    int64_t j = a;
    for (; j + lanes <= b; j += lanes) {
      const auto x = hn::LoadU(df, row + j);
      hn::StoreU(hn::Mul(cap, hn::Tanh(df, hn::Mul(x, inv_cap))), df, row + j);
    }
    for (; j < b; ++j) row[j] = soft_cap * std::tanh(row[j] / soft_cap);
  }
  auto vmax = hn::Set(df, kNegInf);
  int64_t j = a;
  for (; j + lanes <= b; j += lanes) vmax = hn::Max(vmax, hn::LoadU(df, row + j));
  float m = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (; j < b; ++j) m = std::fmax(m, row[j]);

  const auto vm = hn::Set(df, m);
  auto vsum = hn::Zero(df);
  for (j = a; j + lanes <= b; j += lanes) {
    const auto p = hn::Exp(df, hn::Sub(hn::LoadU(df, row + j), vm));
    hn::StoreU(p, df, row + j);
    vsum = hn::Add(vsum, p);
  }
  float l = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; j < b; ++j) {
    row[j] = std::exp(row[j] - m);
    l += row[j];
  }
  return RowState{m, l};
}

// Grow-only buffers of one worker: gathered K and V [keys][head_dim], the
// group's query rows Q and results O [q_len * heads_per_kv][head_dim], and the
// logits S [q_len * heads_per_kv][keys].
struct Scratch {
  std::vector<float> k, v, q, o, s;
  std::vector<RowState> state;
};

void grow(std::vector<float>& buffer, int64_t n) {
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(n);
}

void SlotHead(const Problem& pr, const Operands& op, int64_t s, int64_t h, Scratch& w) {
  const int64_t heads = pr.heads_per_kv, dim = pr.head_dim, page_size = pr.page_size;
  const int64_t q_len = pr.q_len(s), context = pr.context_len(s), seq_len = pr.seq_lens[s];
  const int64_t window = pr.sliding_window;
  // The keys any row of the slot can see: [lo, seq_len).
  const int64_t lo = window > 0 ? std::max<int64_t>(0, context - window + 1) : 0;
  const int64_t n = seq_len - lo;
  const int64_t rows = q_len * heads;  // row i * heads + g is query row i, head g
  grow(w.k, n * dim);
  grow(w.v, n * dim);
  grow(w.q, rows * dim);
  grow(w.o, rows * dim);
  grow(w.s, rows * n);
  w.state.resize(rows);

  const int32_t* block_row = pr.pages_of(s);
  for (int64_t key = lo; key < seq_len; ++key) {
    const int64_t page = block_row[key / page_size], slot = key % page_size;
    load_row_f32(op.k, op.kv_dtype, op.k_at(page, slot, h), dim, &w.k[(key - lo) * dim]);
    load_row_f32(op.v, op.kv_dtype, op.v_at(page, slot, h), dim, &w.v[(key - lo) * dim]);
  }
  if (pr.quantized_kv()) {  // dequantized as gathered, as a dense kernel would need it
    const float k_scale = pr.k_scale_of(h), v_scale = pr.v_scale_of(h);
    for (int64_t i = 0; i < n * dim; ++i) {
      w.k[i] *= k_scale;
      w.v[i] *= v_scale;
    }
  }
  const int64_t t0 = pr.query_start_len[s];
  for (int64_t i = 0; i < q_len; ++i) {
    for (int64_t g = 0; g < heads; ++g) {
      load_row_f32(op.q, op.dtype, op.q_at(t0 + i, h, g), dim, &w.q[(i * heads + g) * dim]);
    }
  }

  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, dim, pr.scale, w.q.data(), dim,
              w.k.data(), dim, 0.0f, w.s.data(), n);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t pos = context + r / heads;
    const int64_t first = window > 0 ? std::max(lo, pos - window + 1) : 0;
    w.state[r] = SoftmaxRow(&w.s[r * n], n, first - lo, pos + 1 - lo, pr.logit_soft_cap);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dim, n, 1.0f, w.s.data(), n,
              w.v.data(), dim, 0.0f, w.o.data(), dim);

  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = t0 + r / heads, g = r % heads;
    float* o = &w.o[r * dim];
    const float* sink = pr.sinks != nullptr ? pr.sinks + h * heads + g : nullptr;
    const float lse = finalize_state(w.state[r], o, dim, sink);
    store_row(o, dim, op.out, op.out_dtype, op.out_at(t, h, g));
    if (op.lse != nullptr) op.lse[op.lse_at(t, h, g)] = lse;
  }
}

void RunGatherDense(const Problem& problem, const Operands& op, int threads) {
  std::vector<int64_t> tasks;  // s * num_kv_heads + h for every live slot
  for (int64_t s = 0; s < problem.batch_capacity; ++s) {
    if (!problem.active(s)) continue;
    for (int64_t h = 0; h < problem.num_kv_heads; ++h)
      tasks.push_back(s * problem.num_kv_heads + h);
  }
  const int64_t count = static_cast<int64_t>(tasks.size());
  // Enough tasks to go round: one single-threaded sgemm per worker (the way a
  // batched attention loop is usually written). Too few: one task at a time,
  // each sgemm using every thread.
  if (count >= threads) {
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(threads)
    {
      Scratch scratch;
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < count; ++i) {
        SlotHead(problem, op, tasks[i] / problem.num_kv_heads, tasks[i] % problem.num_kv_heads,
                 scratch);
      }
    }
  } else {
    openblas_set_num_threads(threads);
    Scratch scratch;
    for (int64_t task : tasks) {
      SlotHead(problem, op, task / problem.num_kv_heads, task % problem.num_kv_heads, scratch);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace rpa::baselines
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rpa::baselines {

HWY_EXPORT(RunGatherDense);

Status gather_dense(const AttentionInputs& inputs, const AttentionOptions& options,
                    const AttentionOutputs& outputs, const BaselineConfig& config) {
  Problem problem;
  RPA_RETURN_IF_ERROR(describe(inputs, options, &outputs, &problem));
  const Operands op = Operands::from(problem, inputs, outputs);
  const int threads = config.threads > 0 ? config.threads : omp_get_max_threads();
  HWY_DYNAMIC_DISPATCH(RunGatherDense)(problem, op, threads);
  return Status::Ok();
}

}  // namespace rpa::baselines
#endif  // HWY_ONCE
