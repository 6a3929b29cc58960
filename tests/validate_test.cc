// The contract checks of docs/contract.md §3. Every case starts from one small valid
// call built by hand, breaks one thing, and expects rpa::attention to name the
// tensor, the index and the value, and to leave out and lse byte-for-byte
// untouched. Valid calls are checked through describe() and check_metadata()
// directly, so these tests do not depend on any backend.

#include "validate_call.h"

namespace rpa {
namespace {

using namespace validate_test;

TEST(Validate, HandBuiltCallIsValid) {
  Call call;
  Problem p;
  const Status status = describe_and_check(call, &p);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(p.num_tokens, 8);
  EXPECT_EQ(p.num_kv_heads, 2);
  EXPECT_EQ(p.heads_per_kv, 2);
  EXPECT_EQ(p.head_dim, 64);
  EXPECT_EQ(p.num_pages, 6);
  EXPECT_EQ(p.page_size, 8);
  EXPECT_EQ(p.batch_capacity, 4);
  EXPECT_EQ(p.max_pages_per_seq, 3);
  EXPECT_EQ(p.dtype, DType::kF32);
  EXPECT_EQ(p.out_dtype, DType::kF32);
  EXPECT_EQ(p.scale, 0.125f);  // the default 1/sqrt(64)
  EXPECT_EQ(p.block_table, call.block_table.data());
  EXPECT_EQ(p.block_table_stride, 3);
  EXPECT_EQ(p.seq_lens, call.seq_lens.data());
  EXPECT_EQ(p.query_start_len, call.query_start_len.data());
  EXPECT_EQ(p.sinks, call.sinks.data());
  EXPECT_TRUE(p.active(0) && !p.active(1) && p.active(2) && !p.active(3));
}

TEST(Validate, Fp8CachesWithTheirScalesAreValid) {
  Call call;
  call.quantize();
  Problem p;
  const Status status = describe_and_check(call, &p);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(p.dtype, DType::kF32);
  EXPECT_EQ(p.kv_dtype, DType::kF8E4M3);
  EXPECT_TRUE(p.quantized_kv());
  EXPECT_EQ(p.k_scale_of(0), 0.5f);
  EXPECT_EQ(p.k_scale_of(1), 2.0f);
  EXPECT_EQ(p.v_scale_of(0), 0.25f);
  EXPECT_EQ(p.v_scale_of(1), 0.25f);  // per tensor: every head reads element 0
}

TEST(Validate, OptionsAreResolvedIntoTheProblem) {
  Call call;
  call.options = {.scale = -0.5f, .sliding_window = 4, .logit_soft_cap = 30.0f};
  call.inputs.sinks = {};
  Problem p;
  ASSERT_TRUE(describe_and_check(call, &p).ok());
  EXPECT_EQ(p.scale, -0.5f);
  EXPECT_EQ(p.sliding_window, 4);
  EXPECT_EQ(p.logit_soft_cap, 30.0f);
  EXPECT_EQ(p.sinks, nullptr);
}

TEST(Validate, OutMayBeF32OrTheInputDType) {
  Call call;
  call.set_input_dtype(DType::kBF16);
  Problem p;
  ASSERT_TRUE(describe_and_check(call, &p).ok());
  EXPECT_EQ(p.dtype, DType::kBF16);
  EXPECT_EQ(p.out_dtype, DType::kF32);
  call.outputs.out.dtype = DType::kBF16;
  ASSERT_TRUE(describe_and_check(call, &p).ok());
  EXPECT_EQ(p.out_dtype, DType::kBF16);
}

TEST(Validate, PlanningWithoutOutputsSkipsTheirChecks) {
  Call call;
  call.set_input_dtype(DType::kF16);
  call.outputs.out = {};
  Problem p;
  const Status status = describe(call.inputs, call.options, nullptr, &p);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(p.out_dtype, DType::kF16);
}

TEST(Validate, EmptyCallWithNullDataIsValid) {
  const int32_t start = 0;
  AttentionInputs in;
  in.q = TensorView::contiguous(nullptr, DType::kBF16, {0, 2, 4, 128});
  in.k_cache = TensorView::contiguous(nullptr, DType::kBF16, {0, 16, 2, 128});
  in.v_cache = in.k_cache;
  in.block_table = TensorView::contiguous(nullptr, DType::kI32, {0, 8});
  in.seq_lens = TensorView::contiguous(nullptr, DType::kI32, {0});
  in.query_start_len = TensorView::contiguous(&start, DType::kI32, {1});
  AttentionOutputs outs;
  outs.out = TensorView::contiguous(nullptr, DType::kBF16, {0, 2, 4, 128});
  outs.lse = TensorView::contiguous(nullptr, DType::kF32, {0, 2, 4});
  Problem p;
  Status status = describe(in, AttentionOptions{}, &outs, &p);
  ASSERT_TRUE(status.ok()) << status.message();
  status = check_metadata(p);
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(p.batch_capacity, 0);
  EXPECT_EQ(p.num_tokens, 0);
}

TEST(Validate, PaddedRowsAreAccepted) {
  Call call;
  // block_table rows 5 entries apart, the padding filled with garbage.
  std::vector<int32_t> padded_table(Call::kSlots * 5, kMin32);
  for (int64_t s = 0; s < Call::kSlots; ++s) {
    for (int64_t p = 0; p < Call::kMaxPages; ++p) padded_table[s * 5 + p] = call.page(s, p);
  }
  call.inputs.block_table.data = padded_table.data();
  call.inputs.block_table.strides[0] = 5;
  // q and out see every other token row of their buffers.
  for (TensorView* view : {&call.inputs.q, &call.outputs.out}) {
    view->shape[0] = 4;
    view->strides[0] *= 2;
  }
  call.outputs.lse.shape[0] = 4;
  call.query_start_len = {0, 1, 1, 4, 4};
  Problem p;
  const Status status = describe_and_check(call, &p);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(p.block_table_stride, 5);
  EXPECT_EQ(p.pages_of(2), padded_table.data() + 10);
}

// A dimension of extent 1 is never stepped along, so its stride is never used.
TEST(Validate, StridesOfSingletonDimensionsAreIgnored) {
  Call call;
  call.inputs.q.shape[0] = 1;
  call.inputs.q.strides[0] = 0;
  call.outputs.out.shape[0] = 1;
  call.outputs.out.strides[0] = -5;
  call.outputs.lse.shape[0] = 1;
  call.query_start_len = {0, 1, 1, 1, 1};
  Problem p;
  const Status status = describe_and_check(call, &p);
  EXPECT_TRUE(status.ok()) << status.message();
}

// The live range of a slot ends at page ceil(seq_len / page_size): slot 0's
// entry 2 (-1) is dead at seq_len 16 and live at seq_len 17.
TEST(Validate, LiveRangeEndsAtTheLastPartialPage) {
  Call call;
  call.seq_lens[0] = 16;
  Problem p;
  ASSERT_TRUE(describe_and_check(call, &p).ok());
  call.seq_lens[0] = 17;
  const Status status = describe_and_check(call, &p);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("block_table[0, 2] = -1"));
}

// A slot whose seq_len is 0 is inactive whatever its q_len (docs/contract.md §1): its
// query rows are not attended and its block_table row is not read.
TEST(Validate, SlotWithNoKeysIsInactiveEvenWithQueryRows) {
  Call call;
  call.query_start_len = {0, 1, 3, 8, 8};  // slot 1 now owns rows 1 and 2
  Problem p;
  const Status status = describe_and_check(call, &p);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_FALSE(p.active(1));
}

// check_metadata reads block_table only at the live pages of active slots: a
// large table of garbage everywhere else (rows of inactive slots, entries past
// the live pages) passes.
TEST(Validate, GarbageOutsideTheLivePagesIsNeverRead) {
  constexpr int64_t kSlots = 512;
  constexpr int64_t kMaxPages = 1024;
  constexpr int64_t kPageSize = 16;
  constexpr int32_t kPages = 100;
  const int32_t garbage[] = {-1, kMin32, kMax32, kPages, -kPages};
  std::vector<int32_t> table(kSlots * kMaxPages);
  for (size_t i = 0; i < table.size(); ++i) table[i] = garbage[i % 5];
  std::vector<int32_t> seq_lens(kSlots);
  std::vector<int32_t> starts(kSlots + 1, 0);
  for (int64_t s = 0; s < kSlots; ++s) {
    // Every third slot has no keys (some of those still own a query row),
    // every fifth has keys but no query rows; the rest are active.
    const int32_t seq_len = s % 3 == 0 ? 0 : static_cast<int32_t>(1 + (s * 37) % 200);
    const int32_t q_len =
        s % 5 == 0 ? 0 : std::min(static_cast<int32_t>(1 + s % 7), std::max(seq_len, 1));
    seq_lens[s] = seq_len;
    starts[s + 1] = starts[s] + q_len;
    if (seq_len == 0 || q_len == 0) continue;
    for (int64_t p = 0; p * kPageSize < seq_len; ++p) {
      table[s * kMaxPages + p] = static_cast<int32_t>((s + p) % kPages);
    }
  }
  Problem p;
  p.num_tokens = starts[kSlots];
  p.num_pages = kPages;
  p.page_size = kPageSize;
  p.batch_capacity = kSlots;
  p.max_pages_per_seq = kMaxPages;
  p.block_table = table.data();
  p.block_table_stride = kMaxPages;
  p.seq_lens = seq_lens.data();
  p.query_start_len = starts.data();
  const Status status = check_metadata(p);
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST(Validate, WithoutValidationMetadataIsNotChecked) {
  Call call;
  call.seq_lens[1] = -3;  // slot 1 has no query rows, so no backend reads it
  EXPECT_EQ(call.run(true).code(), StatusCode::kInvalidArgument);
  const Status status = call.run(false);
  EXPECT_NE(status.code(), StatusCode::kInvalidArgument) << status.message();
}

}  // namespace
}  // namespace rpa
