// The reference backend (the oracle) on hand-computed cases, with every value
// worked out on paper, and on properties of generated batches that hold
// whatever the values are.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "rpa/attention.h"

namespace rpa {
namespace {

constexpr RunConfig kReference{.backend = Backend::kReference};
const float kNan = std::nanf("");
const double kLn2 = std::log(2.0), kLn3 = std::log(3.0), kLn4 = std::log(4.0);

// A hand-built f32 call with head_dim 64 and page_size 16 over a pool of 4
// pages. Everything starts poisoned: q, k, v NaN, block-table entries -1, out
// and lse a NaN sentinel; a case sets exactly what the contract lets be read.
struct Tiny {
  static constexpr int64_t kDim = 64, kPage = 16, kPages = 4, kMaxPages = 3;
  int64_t heads, group, tokens, capacity;
  std::vector<float> q, k, v, out, lse, sinks;
  std::vector<int32_t> table, seq_lens, query_start_len;

  Tiny(int64_t kv_heads, int64_t per_kv_head, int64_t rows, int64_t slots)
      : heads(kv_heads),
        group(per_kv_head),
        tokens(rows),
        capacity(slots),
        q(tokens * heads * group * kDim, kNan),
        k(kPages * kPage * heads * kDim, kNan),
        v(k.size(), kNan),
        out(q.size(), kNan),
        lse(tokens * heads * group, kNan),
        table(capacity * kMaxPages, -1),
        seq_lens(capacity, 0),
        query_start_len(capacity + 1, 0) {}

  // Zeroes a row and returns it for the case to set a few entries.
  float* q_row(int64_t t, int64_t h, int64_t g) {
    return zero(&q[((t * heads + h) * group + g) * kDim]);
  }
  float* k_row(int64_t page, int64_t slot, int64_t h) { return zero(&k[cache_at(page, slot, h)]); }
  float* v_row(int64_t page, int64_t slot, int64_t h) { return zero(&v[cache_at(page, slot, h)]); }
  float out_at(int64_t t, int64_t h, int64_t g, int64_t d) const {
    return out[((t * heads + h) * group + g) * kDim + d];
  }
  float lse_at(int64_t t, int64_t h, int64_t g) const { return lse[(t * heads + h) * group + g]; }

  Status run(const AttentionOptions& options) {
    AttentionInputs in;
    in.q = TensorView::contiguous(q.data(), DType::kF32, {tokens, heads, group, kDim});
    in.k_cache = TensorView::contiguous(k.data(), DType::kF32, {kPages, kPage, heads, kDim});
    in.v_cache = TensorView::contiguous(v.data(), DType::kF32, {kPages, kPage, heads, kDim});
    in.block_table = TensorView::contiguous(table.data(), DType::kI32, {capacity, kMaxPages});
    in.seq_lens = TensorView::contiguous(seq_lens.data(), DType::kI32, {capacity});
    in.query_start_len =
        TensorView::contiguous(query_start_len.data(), DType::kI32, {capacity + 1});
    if (!sinks.empty()) {
      in.sinks = TensorView::contiguous(sinks.data(), DType::kF32, {heads * group});
    }
    AttentionOutputs outs;
    outs.out = TensorView::contiguous(out.data(), DType::kF32, {tokens, heads, group, kDim});
    outs.lse = TensorView::contiguous(lse.data(), DType::kF32, {tokens, heads, group});
    return attention(in, options, outs, kReference);
  }

 private:
  int64_t cache_at(int64_t page, int64_t slot, int64_t h) const {
    return ((page * kPage + slot) * heads + h) * kDim;
  }
  static float* zero(float* row) {
    std::fill(row, row + kDim, 0.0f);
    return row;
  }
};

// One decode row (slot 1 of 3, at position 1) over two keys on physical page 2:
// k0 = 0 and k1 = ln3·e0 against q = 8·e0 give, with the default scale
// 1/sqrt(64) = 1/8, logits 0 and ln 3.
Tiny two_key_decode() {
  Tiny t(1, 1, 3, 3);
  t.seq_lens = {0, 2, 0};
  t.query_start_len = {0, 0, 1, 1};
  t.table = {7, -1, -1, /*slot 1*/ 2, 99, INT32_MIN, -1, -1, -1};
  t.q_row(0, 0, 0)[0] = 8.0f;
  t.k_row(2, 0, 0);
  t.k_row(2, 1, 0)[0] = static_cast<float>(kLn3);
  t.v_row(2, 0, 0)[1] = 4.0f;
  t.v_row(2, 1, 0)[2] = 8.0f;
  return t;
}

TEST(ReferenceHand, TwoKeysWeighOneQuarterAndThreeQuarters) {
  Tiny t = two_key_decode();
  ASSERT_TRUE(t.run({}).ok());
  // Weights e^0 / (1 + 3) = 1/4 and e^ln3 / 4 = 3/4: out = v0/4 + 3·v1/4.
  EXPECT_NEAR(t.out_at(0, 0, 0, 1), 1.0f, 1e-6);  // 4 · 1/4
  EXPECT_NEAR(t.out_at(0, 0, 0, 2), 6.0f, 1e-6);  // 8 · 3/4
  EXPECT_EQ(t.out_at(0, 0, 0, 0), 0.0f);
  EXPECT_NEAR(t.lse_at(0, 0, 0), kLn4, 1e-6);  // ln(1 + 3)
  // Padding rows 1 and 2 belong to no slot: never written.
  for (int64_t i = Tiny::kDim; i < static_cast<int64_t>(t.out.size()); ++i) {
    ASSERT_TRUE(std::isnan(t.out[i])) << i;
  }
  EXPECT_TRUE(std::isnan(t.lse_at(1, 0, 0)));
}

TEST(ReferenceHand, CausalFirstRowOfFreshPromptSeesOnlyKeyZero) {
  Tiny t(1, 1, 2, 1);
  t.seq_lens = {2};
  t.query_start_len = {0, 2};
  t.table = {1, -1, 5};
  for (int64_t row = 0; row < 2; ++row) t.q_row(row, 0, 0)[0] = 8.0f;
  t.k_row(1, 0, 0);
  t.k_row(1, 1, 0)[0] = static_cast<float>(kLn3);
  t.v_row(1, 0, 0)[1] = 4.0f;
  t.v_row(1, 1, 0)[2] = 8.0f;
  ASSERT_TRUE(t.run({}).ok());
  // Row 0 sits at position 0: the single key 0 has weight 1, and lse = logit 0.
  EXPECT_EQ(t.out_at(0, 0, 0, 1), 4.0f);
  EXPECT_EQ(t.out_at(0, 0, 0, 2), 0.0f);
  EXPECT_EQ(t.lse_at(0, 0, 0), 0.0f);
  // Row 1 sees both keys: 1/4 and 3/4 as above.
  EXPECT_NEAR(t.out_at(1, 0, 0, 1), 1.0f, 1e-6);
  EXPECT_NEAR(t.out_at(1, 0, 0, 2), 6.0f, 1e-6);
  EXPECT_NEAR(t.lse_at(1, 0, 0), kLn4, 1e-6);
}

// A decode row at position 17 of a sequence on pages {3, 0}: keys 0..15 on
// page 3, keys 16, 17 on page 0. With q = 0 every logit is 0, so the row
// averages the V rows it sees; v_j = (j + 1)·e0.
Tiny window_decode(int64_t window) {
  Tiny t(1, 1, 1, 1);
  t.seq_lens = {18};
  t.query_start_len = {0, 1};
  t.table = {3, 0, -1};
  t.q_row(0, 0, 0);
  for (int64_t j = 18 - window; j < 18; ++j) {  // keys outside the window stay NaN
    const int64_t page = t.table[j / Tiny::kPage];
    t.k_row(page, j % Tiny::kPage, 0);
    t.v_row(page, j % Tiny::kPage, 0)[0] = static_cast<float>(j + 1);
  }
  return t;
}

TEST(ReferenceHand, WindowOfOneGivesTheRowsOwnValue) {
  Tiny t = window_decode(1);
  ASSERT_TRUE(t.run({.sliding_window = 1}).ok());
  EXPECT_EQ(t.out_at(0, 0, 0, 0), 18.0f);  // v17 alone
  EXPECT_EQ(t.lse_at(0, 0, 0), 0.0f);      // ln(e^0)
}

TEST(ReferenceHand, WindowAcrossAPageBoundaryAveragesItsKeys) {
  Tiny t = window_decode(3);
  ASSERT_TRUE(t.run({.sliding_window = 3}).ok());
  EXPECT_NEAR(t.out_at(0, 0, 0, 0), 17.0f, 1e-5);  // (16 + 17 + 18) / 3
  EXPECT_NEAR(t.lse_at(0, 0, 0), kLn3, 1e-6);      // ln(3 · e^0)
}

TEST(ReferenceHand, SoftCapBendsTheLogits) {
  Tiny t = two_key_decode();
  // Scale 1 and q = e0, so the raw logits are 0 and x = ln2·ln3. With
  // c = 2·ln2, c·tanh(x / c) = 2·ln2·tanh(ln3 / 2) = 2·ln2 · (3 - 1)/(3 + 1)
  // = ln2: weights 1/3 and 2/3.
  t.q_row(0, 0, 0)[0] = 1.0f;
  t.k_row(2, 1, 0)[0] = static_cast<float>(kLn2 * kLn3);
  t.v_row(2, 0, 0)[1] = 3.0f;
  t.v_row(2, 1, 0)[2] = 3.0f;
  ASSERT_TRUE(t.run({.scale = 1.0f, .logit_soft_cap = static_cast<float>(2 * kLn2)}).ok());
  EXPECT_NEAR(t.out_at(0, 0, 0, 1), 1.0f, 1e-6);  // 3 · 1/3
  EXPECT_NEAR(t.out_at(0, 0, 0, 2), 2.0f, 1e-6);  // 3 · 2/3
  EXPECT_NEAR(t.lse_at(0, 0, 0), kLn3, 1e-6);     // ln(1 + 2)
}

TEST(ReferenceHand, SinkJoinsTheDenominatorOnly) {
  Tiny t = two_key_decode();
  t.sinks = {static_cast<float>(kLn4)};
  ASSERT_TRUE(t.run({}).ok());
  // Denominator 1 + 3 + e^ln4 = 8: weights 1/8 and 3/8, the sink's 4/8 has no value.
  EXPECT_NEAR(t.out_at(0, 0, 0, 1), 0.5f, 1e-6);  // 4 · 1/8
  EXPECT_NEAR(t.out_at(0, 0, 0, 2), 3.0f, 1e-6);  // 8 · 3/8
  EXPECT_NEAR(t.lse_at(0, 0, 0), std::log(8.0), 1e-6);
}

TEST(ReferenceHand, HugeLogitsAreShiftedBeforeExp) {
  Tiny t = two_key_decode();
  // Scale 1, q = e0: logits 1000 and 1000 + δ with δ = fl(1000 + ln3) - 1000
  // (about ln3); e^1000 overflows a double, e^δ does not.
  t.q_row(0, 0, 0)[0] = 1.0f;
  t.k_row(2, 0, 0)[0] = 1000.0f;
  const float k1 = static_cast<float>(1000.0 + kLn3);
  t.k_row(2, 1, 0)[0] = k1;
  ASSERT_TRUE(t.run({.scale = 1.0f}).ok());
  const double e = std::exp(static_cast<double>(k1) - 1000.0);  // ≈ 3
  EXPECT_NEAR(t.out_at(0, 0, 0, 1), 4.0 / (1.0 + e), 1e-5);
  EXPECT_NEAR(t.out_at(0, 0, 0, 2), 8.0 * e / (1.0 + e), 1e-5);
  EXPECT_NEAR(t.lse_at(0, 0, 0), 1000.0 + std::log(1.0 + e), 1e-4);
}

TEST(ReferenceHand, GroupedQueryHeadsShareKvAndIndexSinksByHead) {
  // 2 kv heads × 2 query heads each; one decode row over keys 0, 1 on page 1.
  // kv head 0: k0 = 0, k1 = ln3·e0; kv head 1 reversed. v0 = 4·e1, v1 = 8·e2.
  Tiny t(2, 2, 1, 1);
  t.seq_lens = {2};
  t.query_start_len = {0, 1};
  t.table = {1, -1, -1};
  t.k_row(1, 0, 0);
  t.k_row(1, 1, 0)[0] = static_cast<float>(kLn3);
  t.k_row(1, 0, 1)[0] = static_cast<float>(kLn3);
  t.k_row(1, 1, 1);
  for (int64_t h = 0; h < 2; ++h) {
    t.v_row(1, 0, h)[1] = 4.0f;
    t.v_row(1, 1, h)[2] = 8.0f;
  }
  t.q_row(0, 0, 0)[0] = 8.0f;   // head 0: logits 0, ln3
  t.q_row(0, 0, 1);             // head 1: logits 0, 0
  t.q_row(0, 1, 0)[0] = 8.0f;   // head 2: logits ln3, 0
  t.q_row(0, 1, 1)[0] = -8.0f;  // head 3: logits -ln3, 0
  // Only head 2 = kv head 1 · 2 + query head 0 has a sink that matters; e^-100
  // is far below the tolerance.
  t.sinks = {-100.0f, -100.0f, static_cast<float>(kLn4), -100.0f};
  ASSERT_TRUE(t.run({}).ok());
  struct Expect {
    int64_t h, g;
    double d1, d2, lse;
  };
  for (const Expect& e : {
           Expect{0, 0, 1.0, 6.0, kLn4},                 // 1/4, 3/4 of 1 + 3
           Expect{0, 1, 2.0, 4.0, kLn2},                 // 1/2, 1/2 of 1 + 1
           Expect{1, 0, 1.5, 1.0, std::log(8.0)},        // 3/8, 1/8 of 3 + 1 + 4
           Expect{1, 1, 1.0, 6.0, std::log(4.0 / 3.0)},  // 1/4, 3/4 of 1/3 + 1
       }) {
    SCOPED_TRACE(testing::Message() << "kv head " << e.h << " query head " << e.g);
    EXPECT_NEAR(t.out_at(0, e.h, e.g, 1), e.d1, 1e-6);
    EXPECT_NEAR(t.out_at(0, e.h, e.g, 2), e.d2, 1e-6);
    EXPECT_NEAR(t.lse_at(0, e.h, e.g), e.lse, 1e-6);
  }
}

}  // namespace
}  // namespace rpa
