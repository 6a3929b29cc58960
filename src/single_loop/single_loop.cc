// The single-loop executor.
//
// Its shape is the shape of a NeuronCore kernel compiled without nested
// runtime loops: exactly ONE loop whose trip count is a runtime value (the
// plan's item count), and inside it only loops whose bounds are constants of
// the plan (the lanes of a tile, the keys of a chunk, head_dim), with every
// partial edge handled by a predicate instead of a shorter loop. The
// online-softmax state is carried from item to item, reset by the item that
// starts a tile and flushed by the item that ends one. The partial merge is a
// second flat loop, run after the first (consecutive loops are allowed; nested
// ones are not). Clarity over speed: this is the executable proof, the fast
// paths live in src/cpu.
#include "single_loop/single_loop.h"

#include <algorithm>
#include <vector>

#include "core/online_softmax.h"
#include "core/row_mask.h"
#include "plan/item_decode.h"

namespace rpa {
namespace {

// Offset of element (i0, i1, i2, 0) of a rank-3 or rank-4 view.
int64_t offset_of(const TensorView& v, int64_t i0, int64_t i1, int64_t i2) {
  return i0 * v.strides[0] + i1 * v.strides[1] + i2 * v.strides[2];
}

class Executor {
 public:
  Executor(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
           const AttentionOutputs& outputs)
      : p_(problem),
        plan_(plan),
        in_(inputs),
        out_(outputs),
        heads_(problem.heads_per_kv),
        dim_(problem.head_dim),
        lanes_(int64_t{std::max(plan.max_tile_rows, 1)} * problem.heads_per_kv),
        chunk_(plan.config.kv_chunk_tokens),
        state_(lanes_),
        o_(lanes_ * dim_),
        scores_(lanes_ * chunk_),
        partials_(static_cast<size_t>(plan.num_partial_rows * plan.partial_row_floats())) {}

  void run() {
    const int64_t decode_count = static_cast<int64_t>(plan_.decode_items.size());
    const int64_t item_count = decode_count + static_cast<int64_t>(plan_.prefill_items.size());
    for (int64_t i = 0; i < item_count; ++i) {  // the one runtime loop
      const WorkItem& item =
          i < decode_count ? plan_.decode_items[i] : plan_.prefill_items[i - decode_count];
      if (item.starts_tile()) reset();
      score(item);
      accumulate(item);
      if (item.ends_tile()) flush(item);
    }
    merge_partials();
  }

 private:
  // Lane l holds query row l / heads_per_kv, head l % heads_per_kv of the tile.
  bool lane_live(const WorkItem& item, int64_t lane) const { return lane / heads_ < item.q_rows; }

  // Whether the row of `lane` sees key `key` of the item's chunk.
  bool visible(const WorkItem& item, int64_t lane, int64_t key) const {
    if (!lane_live(item, lane) || key >= item.kv_end) return false;
    const int64_t pos = item.q_pos + lane / heads_;
    return RowMask{p_.sliding_window}.sees(pos, key, item.seq_len);
  }

  // Offset of (key, kv_head) in k_cache / v_cache, through the item's pages.
  int64_t kv_offset(const TensorView& cache, const WorkItem& item, int64_t key) const {
    const int64_t page = plan_.pages[page_list_index(item, key, p_.page_size)];
    return offset_of(cache, page, key % p_.page_size, item.kv_head);
  }

  void reset() {
    std::fill(state_.begin(), state_.end(), RowState{});
    std::fill(o_.begin(), o_.end(), 0.0f);
  }

  void score(const WorkItem& item) {
    for (int64_t lane = 0; lane < lanes_; ++lane) {
      for (int64_t j = 0; j < chunk_; ++j) {
        const int64_t key = item.kv_begin + j;
        float s = kNegInf;
        if (visible(item, lane, key)) {
          const int64_t q_at = offset_of(in_.q, item.q_row + lane / heads_, item.kv_head, lane % heads_);
          const int64_t k_at = kv_offset(in_.k_cache, item, key);
          float dot = 0.0f;
          for (int64_t d = 0; d < dim_; ++d) {
            dot += load_as_f32(in_.q.data, p_.dtype, q_at + d) *
                   load_as_f32(in_.k_cache.data, p_.kv_dtype, k_at + d);
          }
          // An fp8 head's K scale is one factor of the whole dot product.
          s = transform_logit(dot * p_.k_scale_of(item.kv_head), p_.scale, p_.logit_soft_cap);
        }
        scores_[lane * chunk_ + j] = s;
      }
    }
  }

  // Folds the chunk's scores into each lane's state: one rescale per chunk.
  void accumulate(const WorkItem& item) {
    for (int64_t lane = 0; lane < lanes_; ++lane) {
      const float* s = &scores_[lane * chunk_];
      const float chunk_max = *std::max_element(s, s + chunk_);
      if (chunk_max == kNegInf) continue;  // the row sees nothing here
      RowState& st = state_[lane];
      const float m = std::max(st.m, chunk_max);
      const float f = rescale_factor(st.m, m);
      float* o = &o_[lane * dim_];
      for (int64_t d = 0; d < dim_; ++d) o[d] *= f;
      st.l *= f;
      for (int64_t j = 0; j < chunk_; ++j) {
        if (s[j] == kNegInf) continue;  // skipped, never multiplied: dead data cannot leak
        const float w = std::exp(s[j] - m);
        st.l += w;
        const int64_t v_at = kv_offset(in_.v_cache, item, item.kv_begin + j);
        const float wv = w * p_.v_scale_of(item.kv_head);  // the V scale rides on the weight
        for (int64_t d = 0; d < dim_; ++d) {
          o[d] += wv * load_as_f32(in_.v_cache.data, p_.kv_dtype, v_at + d);
        }
      }
      st.m = m;
    }
  }

  void flush(const WorkItem& item) {
    for (int64_t lane = 0; lane < lanes_; ++lane) {
      if (!lane_live(item, lane)) continue;
      if (item.partial < 0) {
        write_row(item.q_row + lane / heads_, item.kv_head, lane % heads_, state_[lane], &o_[lane * dim_]);
        continue;
      }
      float* rec = &partials_[partial_record_offset(item.partial, lane, heads_, dim_)];
      rec[0] = state_[lane].m;
      rec[1] = state_[lane].l;
      std::copy_n(&o_[lane * dim_], dim_, rec + 2);
    }
  }

  // Second flat loop: the split chains in order; groups are contiguous, so
  // carried cursors tell which group and split a chain is.
  void merge_partials() {
    size_t group = 0;
    int32_t split = 0;
    for (int64_t chain = 0; chain < plan_.stats.partials; ++chain) {
      const MergeGroup& g = plan_.merges[group];
      if (split == 0) reset();
      const int64_t row = g.first_partial + int64_t{split} * g.q_rows;
      for (int64_t lane = 0; lane < lanes_; ++lane) {
        if (lane / heads_ >= g.q_rows) continue;
        const float* rec = &partials_[partial_record_offset(row, lane, heads_, dim_)];
        merge_state(state_[lane], &o_[lane * dim_], RowState{rec[0], rec[1]}, rec + 2, dim_);
      }
      if (++split == g.count) {
        split = 0;
        for (int64_t lane = 0; lane < lanes_; ++lane) {
          if (lane / heads_ >= g.q_rows) continue;
          write_row(g.q_row + lane / heads_, g.kv_head, lane % heads_, state_[lane], &o_[lane * dim_]);
        }
        ++group;
      }
    }
  }

  void write_row(int64_t token, int64_t kv_head, int64_t g, const RowState& st, float* o) {
    const float* sink = p_.sinks != nullptr ? &p_.sinks[kv_head * heads_ + g] : nullptr;
    const float lse = finalize_state(st, o, dim_, sink);
    const int64_t at = offset_of(out_.out, token, kv_head, g);
    for (int64_t d = 0; d < dim_; ++d) store_from_f32(out_.out.data, p_.out_dtype, at + d, o[d]);
    if (out_.lse.present()) out_.lse.as<float>()[offset_of(out_.lse, token, kv_head, g)] = lse;
  }

  const Problem& p_;
  const Plan& plan_;
  const AttentionInputs& in_;
  const AttentionOutputs& out_;
  const int64_t heads_;
  const int64_t dim_;
  const int64_t lanes_;
  const int64_t chunk_;
  std::vector<RowState> state_;
  std::vector<float> o_;
  std::vector<float> scores_;
  std::vector<float> partials_;
};

}  // namespace

Status run_single_loop(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
                       const AttentionOutputs& outputs) {
  Executor(problem, plan, inputs, outputs).run();
  return Status::Ok();
}

}  // namespace rpa
