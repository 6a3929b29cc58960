// The reference backend: for each live query row and head, the exact softmax
// over the keys that row sees, computed in double straight from docs/contract.md §1-§2.
// It shares nothing with the fast paths (no plan, no online softmax), so that an
// error in those cannot hide by being repeated here.
//
// Work is done per (slot, kv head): the slot's visible keys are converted to
// double once (K transposed, so that a row's logits are a loop over keys with
// no reduction), then every row and query head of that kv head is computed
// from them. Each output element is computed by exactly one task in a fixed
// order, so the result does not depend on the thread count.
#include "reference/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "rpa/dtype.h"

namespace rpa {
namespace {

// Element offset of index (i0, i1, i2, i3) in a view of rank <= 4; trailing
// indices beyond the view's rank are ignored.
int64_t offset_of(const TensorView& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3 = 0) {
  const int64_t index[kMaxRank] = {i0, i1, i2, i3};
  int64_t offset = 0;
  for (int d = 0; d < t.rank; ++d) offset += index[d] * t.strides[d];
  return offset;
}

double load(const TensorView& t, int64_t offset) {
  return static_cast<double>(load_as_f32(t.data, t.dtype, offset));
}

// The keys [first, end) of one slot and kv head, in double.
struct Keys {
  int64_t first = 0;
  int64_t count = 0;
  std::vector<double> k_transposed;  // [head_dim][count]
  std::vector<double> v;             // [count][head_dim]
};

class Reference {
 public:
  Reference(const Problem& problem, const AttentionInputs& inputs, const AttentionOutputs& outputs)
      : p_(problem), in_(inputs), out_(outputs) {}

  void run() {
    std::vector<int64_t> slots;
    for (int64_t s = 0; s < p_.batch_capacity; ++s) {
      if (p_.active(s)) slots.push_back(s);  // inactive slots are never read, never written
    }
    const int64_t tasks = static_cast<int64_t>(slots.size()) * p_.num_kv_heads;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      attend_slot(slots[task / p_.num_kv_heads], task % p_.num_kv_heads);
    }
  }

 private:
  // First key visible to the row at absolute position `position`.
  int64_t first_key(int64_t position) const {
    return p_.sliding_window > 0 ? std::max<int64_t>(0, position - p_.sliding_window + 1) : 0;
  }

  // Loads keys [first, seq_len) of slot s, kv head h: every key some row of the
  // slot can see, and no other (dead tail slots and pages are never touched).
  Keys load_keys(int64_t s, int64_t h, int64_t first) const {
    Keys keys;
    keys.first = first;
    keys.count = p_.seq_lens[s] - first;
    const int64_t dim = p_.head_dim;
    keys.k_transposed.resize(dim * keys.count);
    keys.v.resize(keys.count * dim);
    const int32_t* pages = p_.pages_of(s);
    // An fp8 cache element is worth its decoded value times its head's scale.
    const double k_scale = p_.k_scale_of(h);
    const double v_scale = p_.v_scale_of(h);
    for (int64_t j = 0; j < keys.count; ++j) {
      const int64_t key = first + j;
      const int64_t page = pages[key / p_.page_size];
      const int64_t k_base = offset_of(in_.k_cache, page, key % p_.page_size, h);
      const int64_t v_base = offset_of(in_.v_cache, page, key % p_.page_size, h);
      for (int64_t d = 0; d < dim; ++d) {
        keys.k_transposed[d * keys.count + j] = load(in_.k_cache, k_base + d) * k_scale;
        keys.v[j * dim + d] = load(in_.v_cache, v_base + d) * v_scale;
      }
    }
    return keys;
  }

  void attend_slot(int64_t s, int64_t h) {
    const int64_t q_start = p_.query_start_len[s];
    const int64_t context = p_.context_len(s);
    const Keys keys = load_keys(s, h, first_key(context));
    std::vector<double> q(p_.head_dim), logits(keys.count), acc(p_.head_dim);
    for (int64_t i = 0; i < p_.q_len(s); ++i) {
      // Row q_start + i sits at absolute position context + i and sees keys up
      // to itself; a window keeps only its W most recent keys.
      const int64_t position = context + i;
      for (int64_t g = 0; g < p_.heads_per_kv; ++g) {
        attend_row(q_start + i, h, g, keys, first_key(position), position, q, logits, acc);
      }
    }
  }

  // Out and lse of token row t, query head (h, g), over keys [first, last].
  void attend_row(int64_t t, int64_t h, int64_t g, const Keys& keys, int64_t first, int64_t last,
                  std::vector<double>& q, std::vector<double>& logits, std::vector<double>& acc) const {
    const int64_t dim = p_.head_dim;
    const int64_t q_base = offset_of(in_.q, t, h, g);
    for (int64_t d = 0; d < dim; ++d) q[d] = load(in_.q, q_base + d);

    // logits[j] = q · k_j, accumulated over d in order for each key.
    const int64_t begin = first - keys.first, end = last + 1 - keys.first;
    std::fill(logits.begin() + begin, logits.begin() + end, 0.0);
    for (int64_t d = 0; d < dim; ++d) {
      const double* k_row = &keys.k_transposed[d * keys.count];
      for (int64_t j = begin; j < end; ++j) logits[j] += q[d] * k_row[j];
    }
    const double cap = p_.logit_soft_cap;
    for (int64_t j = begin; j < end; ++j) {
      const double x = static_cast<double>(p_.scale) * logits[j];
      logits[j] = cap > 0.0 ? cap * std::tanh(x / cap) : x;
    }

    // Exact softmax: the max only keeps exp() in range; it cancels in out and
    // is added back to lse. The sink joins the denominator and has no value row.
    const bool has_sink = p_.sinks != nullptr;
    const double sink = has_sink ? p_.sinks[h * p_.heads_per_kv + g] : 0.0;
    double max_logit = has_sink ? sink : -std::numeric_limits<double>::infinity();
    for (int64_t j = begin; j < end; ++j) max_logit = std::max(max_logit, logits[j]);
    double denominator = has_sink ? std::exp(sink - max_logit) : 0.0;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = begin; j < end; ++j) {
      const double weight = std::exp(logits[j] - max_logit);
      denominator += weight;
      const double* v_row = &keys.v[j * dim];
      for (int64_t d = 0; d < dim; ++d) acc[d] += weight * v_row[d];
    }

    const TensorView& out = out_.out;
    const int64_t out_base = offset_of(out, t, h, g);
    for (int64_t d = 0; d < dim; ++d) {
      store_from_f32(out.data, out.dtype, out_base + d, static_cast<float>(acc[d] / denominator));
    }
    if (out_.lse.present()) {
      out_.lse.as<float>()[offset_of(out_.lse, t, h, g)] =
          static_cast<float>(max_logit + std::log(denominator));
    }
  }

  const Problem& p_;
  const AttentionInputs& in_;
  const AttentionOutputs& out_;
};

}  // namespace

Status run_reference(const Problem& problem, const AttentionInputs& inputs,
                     const AttentionOutputs& outputs) {
  Reference(problem, inputs, outputs).run();
  return Status::Ok();
}

}  // namespace rpa
