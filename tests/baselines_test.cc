// The benchmark baselines (harness/baselines) against the reference: a speedup
// over a wrong baseline would mean nothing. Both run the full contract of the
// bench scenarios and more: GQA 1/2/4/8, f32/bf16/f16, f32 out, windows,
// soft-cap, sinks, lse, strided q/out, NaN garbage in every dead K/V slot.
#include "baselines/baselines.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "compare/compare.h"
#include "generate/batch.h"
#include "hwy/targets.h"

namespace rpa::baselines {
namespace {

enum class Baseline { kCapacityMasked, kGatherDense };

Status run(Baseline which, const AttentionInputs& in, const AttentionOptions& options,
           const AttentionOutputs& out) {
  return which == Baseline::kCapacityMasked ? capacity_masked(in, options, out)
                                            : gather_dense(in, options, out);
}

struct Case {
  std::string name;
  gen::BatchSpec spec;
};

// Readable parameters in failure messages.
void PrintTo(Baseline b, std::ostream* os) {
  *os << (b == Baseline::kCapacityMasked ? "capacity-masked" : "gather-dense");
}
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

gen::BatchSpec small(DType dtype, int32_t kv_heads, int32_t heads_per_kv, int32_t head_dim,
                     int32_t page_size) {
  gen::BatchSpec spec;
  spec.dtype = dtype;
  spec.out_dtype = dtype;
  spec.num_kv_heads = kv_heads;
  spec.heads_per_kv = heads_per_kv;
  spec.head_dim = head_dim;
  spec.page_size = page_size;
  spec.batch_capacity = 10;
  spec.num_active = 6;
  spec.max_context = 200;
  spec.max_chunk = 40;
  spec.max_prompt = 60;
  return spec;
}

std::vector<Case> cases() {
  std::vector<Case> list;
  gen::BatchSpec decode = small(DType::kF32, 2, 1, 64, 16);
  decode.chunk_weight = decode.fresh_weight = 0.0;
  list.push_back({"F32DecodeGqa1", decode});
  list.push_back({"Bf16MixedGqa4", small(DType::kBF16, 2, 4, 128, 16)});
  list.push_back({"F16MixedGqa8Page32", small(DType::kF16, 1, 8, 64, 32)});
  gen::BatchSpec window = small(DType::kBF16, 2, 4, 64, 16);
  window.options.sliding_window = 37;
  window.options.logit_soft_cap = 5.0f;
  window.value_range = 3.0f;  // logits large enough for the cap to bend them
  list.push_back({"Bf16WindowSoftCap", window});
  gen::BatchSpec sinks = small(DType::kF32, 2, 2, 256, 64);
  sinks.sinks = sinks.lse = true;
  sinks.options.scale = 0.07f;
  list.push_back({"F32SinksLseScalePage64Dim256", sinks});
  gen::BatchSpec f32_out = small(DType::kBF16, 2, 4, 128, 16);
  f32_out.out_dtype = DType::kF32;
  f32_out.lse = true;
  list.push_back({"Bf16InF32Out", f32_out});
  gen::BatchSpec f16_window = small(DType::kF16, 2, 2, 96, 8);
  f16_window.options.sliding_window = 100;
  f16_window.sinks = f16_window.lse = true;
  list.push_back({"F16WindowSinksDim96Page8", f16_window});
  // Pages shorter than a vector (8 f32 lanes on AVX2, 16 on AVX-512): the
  // padding lanes of a page's scores must stay out of every later page.
  f16_window.page_size = 4;
  list.push_back({"F16WindowSinksDim96Page4", f16_window});
  list.push_back({"Bf16MixedGqa4Page2", small(DType::kBF16, 2, 4, 128, 2)});
  gen::BatchSpec page1 = small(DType::kF32, 2, 2, 64, 1);
  page1.lse = true;
  list.push_back({"F32LsePage1", page1});
  list.push_back({"F32Dim80Page128", small(DType::kF32, 1, 4, 80, 128)});
  gen::BatchSpec fp8 = small(DType::kBF16, 3, 4, 128, 16);
  fp8.kv_quant = gen::KvQuant::kFp8PerHead;
  fp8.lse = true;
  list.push_back({"Bf16QFp8PerHeadCaches", fp8});
  gen::BatchSpec fp8_tensor = small(DType::kF32, 2, 2, 64, 32);
  fp8_tensor.kv_quant = gen::KvQuant::kFp8PerTensor;
  fp8_tensor.options.sliding_window = 50;
  list.push_back({"F32QFp8PerTensorCachesWindow", fp8_tensor});
  return list;
}

// Checks the live rows against the reference and every padding row for the
// untouched sentinel; lse too when the case asks for it.
void expect_matches_reference(const gen::Batch& batch, const std::vector<uint8_t>& out,
                              const std::vector<float>& lse) {
  std::vector<uint8_t> want = batch.make_out();
  std::vector<float> want_lse = batch.make_lse();
  AttentionOutputs ref{batch.out_view(want),
                       batch.spec.lse ? batch.lse_view(want_lse) : TensorView{}};
  ASSERT_TRUE(
      attention(batch.inputs(), batch.spec.options, ref, RunConfig{Backend::kReference}).ok());

  std::vector<uint8_t> got_copy = out;
  const Comparison c =
      compare_outputs(batch.out_view(got_copy), batch.out_view(want), batch.seq_lens.data(),
                      batch.query_start_len.data(), batch.spec.batch_capacity);
  EXPECT_GT(c.rows, 0);
  EXPECT_TRUE(c.within(tolerance_for(batch.spec.dtype)))
      << "relative error " << c.relative_error() << " over " << c.rows << " rows";

  const int64_t live_bytes =
      static_cast<int64_t>(out.size()) / batch.num_tokens * batch.live_rows();
  for (size_t i = live_bytes; i < out.size(); ++i) {
    ASSERT_EQ(out[i], 0xff) << "padding byte " << i << " was written";
  }
  if (!batch.spec.lse) return;
  const int64_t heads = int64_t{batch.spec.num_kv_heads} * batch.spec.heads_per_kv;
  for (int64_t i = 0; i < batch.live_rows() * heads; ++i) {
    ASSERT_NEAR(lse[i], want_lse[i], 1e-3 * std::fmax(1.0, std::fabs(want_lse[i]))) << "lse " << i;
  }
}

class BaselinesTest : public ::testing::TestWithParam<std::tuple<Baseline, Case>> {};

// On every instruction set this CPU runs (AVX2 and AVX-512 on an AVX-512
// machine), since a lane-count bug shows only on some of them.
TEST_P(BaselinesTest, MatchesReferenceOnGeneratedBatches) {
  const auto& [which, c] = GetParam();
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    for (uint64_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      gen::BatchSpec spec = c.spec;
      spec.seed = seed;
      const gen::Batch batch = gen::generate(spec);
      std::vector<uint8_t> out = batch.make_out();
      std::vector<float> lse = batch.make_lse();
      const AttentionOutputs outputs{batch.out_view(out),
                                     spec.lse ? batch.lse_view(lse) : TensorView{}};
      ASSERT_TRUE(run(which, batch.inputs(), spec.options, outputs).ok());
      expect_matches_reference(batch, out, lse);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

INSTANTIATE_TEST_SUITE_P(AllCases, BaselinesTest,
                         ::testing::Combine(::testing::Values(Baseline::kCapacityMasked,
                                                              Baseline::kGatherDense),
                                            ::testing::ValuesIn(cases())),
                         [](const ::testing::TestParamInfo<BaselinesTest::ParamType>& info) {
                           return std::string(std::get<0>(info.param) == Baseline::kCapacityMasked
                                                  ? "CapacityMasked"
                                                  : "GatherDense") +
                                  "_" + std::get<1>(info.param).name;
                         });

// q and out with padded token rows: both baselines address rows through the
// views' strides, never by assuming a dense layout.
TEST(BaselinesStrides, StridedQAndOutMatchDense) {
  gen::BatchSpec spec = small(DType::kF32, 2, 4, 64, 16);
  spec.seed = 5;
  const gen::Batch batch = gen::generate(spec);
  const int64_t row = int64_t{spec.num_kv_heads} * spec.heads_per_kv * spec.head_dim;
  const int64_t padded = row + 64;
  std::vector<float> q(batch.num_tokens * padded, NAN);
  for (int64_t t = 0; t < batch.num_tokens; ++t) {
    std::memcpy(&q[t * padded], batch.q.data() + t * row * 4, row * 4);
  }
  AttentionInputs in = batch.inputs();
  in.q.data = q.data();
  in.q.strides[0] = padded;
  for (Baseline which : {Baseline::kCapacityMasked, Baseline::kGatherDense}) {
    std::vector<uint8_t> dense = batch.make_out();
    ASSERT_TRUE(run(which, batch.inputs(), spec.options, {batch.out_view(dense), {}}).ok());
    std::vector<float> strided(batch.num_tokens * padded, 0.0f);
    TensorView out = batch.out_view(dense);
    out.data = strided.data();
    out.strides[0] = padded;
    ASSERT_TRUE(run(which, in, spec.options, {out, {}}).ok());
    for (int64_t t = 0; t < batch.live_rows(); ++t) {
      ASSERT_EQ(std::memcmp(&strided[t * padded], dense.data() + t * row * 4, row * 4), 0) << t;
    }
  }
}

// The benchmark times a slot range of the capacity-masked loop: the range's
// live rows are right and no other row is written.
TEST(CapacityMasked, SlotRangeWritesOnlyItsSlots) {
  gen::BatchSpec spec = small(DType::kBF16, 2, 4, 64, 16);
  spec.seed = 9;
  const gen::Batch batch = gen::generate(spec);
  const SlotRange range{3, 8};
  std::vector<uint8_t> part = batch.make_out(), whole = batch.make_out();
  ASSERT_TRUE(
      capacity_masked(batch.inputs(), spec.options, {batch.out_view(part), {}}, {}, range).ok());
  ASSERT_TRUE(capacity_masked(batch.inputs(), spec.options, {batch.out_view(whole), {}}).ok());
  const int64_t row_bytes = int64_t{spec.num_kv_heads} * spec.heads_per_kv * spec.head_dim * 2;
  for (int64_t s = 0; s < spec.batch_capacity; ++s) {
    const bool inside = s >= range.begin && s < range.end;
    for (int64_t t = batch.query_start_len[s]; t < batch.query_start_len[s + 1]; ++t) {
      const uint8_t* got = part.data() + t * row_bytes;
      if (inside) {
        EXPECT_EQ(std::memcmp(got, whole.data() + t * row_bytes, row_bytes), 0) << "slot " << s;
      } else {
        EXPECT_EQ(got[0], 0xff) << "slot " << s << " is outside the range but was written";
      }
    }
  }
}

TEST(CapacityMasked, RowsCountEveryInactiveSlotAsOneRow) {
  gen::BatchSpec spec = small(DType::kBF16, 2, 4, 64, 16);
  spec.seed = 4;
  const gen::Batch batch = gen::generate(spec);
  int64_t expected = 0;
  for (int64_t s = 0; s < spec.batch_capacity; ++s) {
    const int64_t q_len = batch.query_start_len[s + 1] - batch.query_start_len[s];
    expected += (batch.seq_lens[s] > 0 && q_len > 0) ? q_len : 1;
  }
  EXPECT_EQ(capacity_masked_rows(batch.inputs()), expected);
  EXPECT_EQ(capacity_masked_rows(batch.inputs(), {2, 2}), 0);
  EXPECT_EQ(
      capacity_masked_rows(batch.inputs(), {0, 1}) + capacity_masked_rows(batch.inputs(), {1, -1}),
      expected);
}

}  // namespace
}  // namespace rpa::baselines
