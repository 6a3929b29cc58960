// merge_states and write_kv: the math, the empty-part cases and every error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "generate/batch.h"
#include "rpa/merge_states.h"
#include "rpa/write_kv.h"

namespace rpa {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TensorView f32(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  return TensorView::contiguous(v.data(), DType::kF32, shape);
}

TEST(MergeStates, CombinesTwoPartsByTheirDenominators) {
  // Part a: one key with logit 0 and value [1, 0] -> out [1, 0], lse 0.
  // Part b: one key with logit ln 3 and value [0, 1] -> out [0, 1], lse ln 3.
  // Together: weights 1/4 and 3/4 -> out [0.25, 0.75], lse ln 4.
  std::vector<float> oa = {1, 0}, ob = {0, 1}, la = {0}, lb = {std::log(3.0f)}, o(2), l(1);
  ASSERT_TRUE(merge_states({f32(oa, {1, 2}), f32(la, {1}), f32(ob, {1, 2}), f32(lb, {1})}, f32(o, {1, 2}), f32(l, {1})).ok());
  EXPECT_FLOAT_EQ(o[0], 0.25f);
  EXPECT_FLOAT_EQ(o[1], 0.75f);
  EXPECT_FLOAT_EQ(l[0], std::log(4.0f));
}

TEST(MergeStates, EmptyPartContributesNothingAndNoNan) {
  std::vector<float> oa = {0.5f, -2}, ob = {7, 7}, la = {1.5f}, lb = {-kInf}, o(2), l(1);
  ASSERT_TRUE(merge_states({f32(oa, {1, 2}), f32(la, {1}), f32(ob, {1, 2}), f32(lb, {1})}, f32(o, {1, 2}), f32(l, {1})).ok());
  EXPECT_EQ(o, oa);
  EXPECT_FLOAT_EQ(l[0], 1.5f);
  // Both empty: out 0, lse -inf.
  la = {-kInf};
  ASSERT_TRUE(merge_states({f32(oa, {1, 2}), f32(la, {1}), f32(ob, {1, 2}), f32(lb, {1})}, f32(o, {1, 2}), f32(l, {1})).ok());
  EXPECT_EQ(o, (std::vector<float>{0, 0}));
  EXPECT_EQ(l[0], -kInf);
}

TEST(MergeStates, MatchesAttentionOverTheUnionOfKeys) {
  // Split one decode row's keys in two by running the reference on a shorter
  // sequence is not possible through the contract, so check against the
  // closed form instead: merging a state with itself keeps out and adds ln 2.
  std::vector<float> oa = {0.1f, 0.2f, 0.3f, 0.4f}, la = {0.7f, -1.0f}, o(4), l(2);
  ASSERT_TRUE(merge_states({f32(oa, {2, 2}), f32(la, {2}), f32(oa, {2, 2}), f32(la, {2})}, f32(o, {2, 2}), f32(l, {2})).ok());
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(o[i], oa[i]);
  EXPECT_FLOAT_EQ(l[0], 0.7f + std::log(2.0f));
  EXPECT_FLOAT_EQ(l[1], -1.0f + std::log(2.0f));
}

TEST(MergeStates, InPlaceIntoTheFirstPart) {
  std::vector<float> oa = {1, 0}, ob = {0, 1}, la = {0}, lb = {0};
  ASSERT_TRUE(merge_states({f32(oa, {1, 2}), f32(la, {1}), f32(ob, {1, 2}), f32(lb, {1})}, f32(oa, {1, 2}), f32(la, {1})).ok());
  EXPECT_FLOAT_EQ(oa[0], 0.5f);
  EXPECT_FLOAT_EQ(la[0], std::log(2.0f));
}

TEST(MergeStates, RejectsBadInputsAndWritesNothing) {
  std::vector<float> oa = {1, 0}, ob = {0, 1}, la = {0}, lb = {0}, o = {9, 9}, l = {9};
  Status s = merge_states({f32(oa, {1, 2}), f32(la, {1}), f32(ob, {2, 1}), f32(lb, {1})}, f32(o, {1, 2}), f32(l, {1}));
  EXPECT_NE(s.message().find("out_b.shape[0] = 2 must equal out_a.shape[0] = 1"), std::string::npos) << s.message();
  s = merge_states({f32(oa, {1, 2}), f32(la, {1}), f32(ob, {1, 2}), f32(lb, {1})}, f32(ob, {1, 2}), f32(l, {1}));
  EXPECT_NE(s.message().find("out overlaps out_b"), std::string::npos) << s.message();
  std::vector<uint16_t> half(2);
  s = merge_states({f32(oa, {1, 2}), f32(la, {1}), f32(ob, {1, 2}), f32(lb, {1})},
                   TensorView::contiguous(half.data(), DType::kF16, {1, 2}), f32(l, {1}));
  EXPECT_NE(s.message().find("out.dtype = f16 must be out_a.dtype (f32) or f32"), std::string::npos) << s.message();
  EXPECT_EQ(o, (std::vector<float>{9, 9}));
  EXPECT_EQ(l, (std::vector<float>{9}));
}

struct SmallCache {
  // 3 pages of 4 tokens, 2 kv heads, head_dim 64, f32.
  std::vector<float> k = std::vector<float>(3 * 4 * 2 * 64, -1.0f), v = k;
  KvCache views() { return {f32(k, {3, 4, 2, 64}), f32(v, {3, 4, 2, 64})}; }
};

TEST(WriteKv, WritesEachTokenToItsSlotAndSkipsPadding) {
  SmallCache cache;
  std::vector<float> kn(3 * 2 * 64), vn(3 * 2 * 64);
  for (size_t i = 0; i < kn.size(); ++i) kn[i] = static_cast<float>(i), vn[i] = -static_cast<float>(i);
  std::vector<int32_t> slots = {9, -1, 2};  // page 2 offset 1; padding; page 0 offset 2
  ASSERT_TRUE(write_kv(f32(kn, {3, 2, 64}), f32(vn, {3, 2, 64}), TensorView::contiguous(slots.data(), DType::kI32, {3}),
                       cache.views()).ok());
  for (int h = 0; h < 2; ++h) {
    for (int d = 0; d < 64; ++d) {
      EXPECT_EQ(cache.k[((2 * 4 + 1) * 2 + h) * 64 + d], kn[(0 * 2 + h) * 64 + d]);
      EXPECT_EQ(cache.v[((0 * 4 + 2) * 2 + h) * 64 + d], vn[(2 * 2 + h) * 64 + d]);
    }
  }
  int untouched = 0;
  for (float x : cache.k) untouched += x == -1.0f;
  EXPECT_EQ(untouched, static_cast<int>(cache.k.size()) - 2 * 2 * 64);
}

TEST(WriteKv, CopiesFp8CodesIntoFp8Caches) {
  std::vector<uint8_t> k(2 * 4 * 1 * 64, 0x7f), v = k, kn(64, 0x38), vn(64, 0xc0);
  std::vector<int32_t> slots = {6};  // page 1, offset 2
  const auto fp8 = [](std::vector<uint8_t>& b, std::initializer_list<int64_t> shape) {
    return TensorView::contiguous(b.data(), DType::kF8E4M3, shape);
  };
  ASSERT_TRUE(write_kv(fp8(kn, {1, 1, 64}), fp8(vn, {1, 1, 64}),
                       TensorView::contiguous(slots.data(), DType::kI32, {1}),
                       {fp8(k, {2, 4, 1, 64}), fp8(v, {2, 4, 1, 64})})
                  .ok());
  for (size_t i = 0; i < k.size(); ++i) {
    const bool written = i / 64 == 6;
    EXPECT_EQ(k[i], written ? 0x38 : 0x7f) << i;
    EXPECT_EQ(v[i], written ? 0xc0 : 0x7f) << i;
  }
}

TEST(WriteKv, RejectsBadSlotsAndWritesNothing) {
  std::vector<float> kn(2 * 2 * 64, 5.0f), vn = kn;
  const auto attempt = [&](std::vector<int32_t> slots) {
    SmallCache cache;
    const Status s = write_kv(f32(kn, {2, 2, 64}), f32(vn, {2, 2, 64}),
                              TensorView::contiguous(slots.data(), DType::kI32, {2}), cache.views());
    for (float x : cache.k) EXPECT_EQ(x, -1.0f);
    for (float x : cache.v) EXPECT_EQ(x, -1.0f);
    return s.message();
  };
  EXPECT_NE(attempt({3, 12}).find("slot_mapping[1] = 12 is outside [0, 12)"), std::string::npos);
  EXPECT_NE(attempt({-2, 1}).find("slot_mapping[0] = -2"), std::string::npos);
  EXPECT_NE(attempt({4, 4}).find("slot_mapping[1] = 4 duplicates slot_mapping[0]"), std::string::npos);
}

TEST(WriteKv, RejectsShapeAndDtypeMismatch) {
  SmallCache cache;
  std::vector<float> kn(2 * 2 * 64), vn(2 * 2 * 32);
  std::vector<int32_t> slots = {0, 1};
  Status s = write_kv(f32(kn, {2, 2, 64}), f32(vn, {2, 2, 32}), TensorView::contiguous(slots.data(), DType::kI32, {2}),
                      cache.views());
  EXPECT_NE(s.message().find("v_new.shape[2] = 32 must equal k_cache.shape[3] = 64"), std::string::npos) << s.message();
  std::vector<uint16_t> half(2 * 2 * 64);
  s = write_kv(TensorView::contiguous(half.data(), DType::kBF16, {2, 2, 64}), f32(kn, {2, 2, 64}),
               TensorView::contiguous(slots.data(), DType::kI32, {2}), cache.views());
  EXPECT_NE(s.message().find("k_new.dtype = bf16 must equal k_cache.dtype = f32"), std::string::npos) << s.message();
  for (float x : cache.k) EXPECT_EQ(x, -1.0f);
}

}  // namespace
}  // namespace rpa
