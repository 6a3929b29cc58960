// The contract checks of docs/contract.md §3. Every case starts from one small valid
// call built by hand, breaks one thing, and expects rpa::attention to name the
// tensor, the index and the value, and to leave out and lse byte-for-byte
// untouched. Valid calls are checked through describe() and check_metadata()
// directly, so these tests do not depend on any backend.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "core/problem.h"
#include "rpa/attention.h"

namespace rpa {
namespace {

using ::testing::HasSubstr;

constexpr unsigned char kSentinel = 0xa5;
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();

// A valid f32 call: 4 slots over a pool of 6 pages of 8 tokens, 2 kv heads of
// 2 query heads each, head_dim 64, with sinks and lse.
//   slot 0: decode, q_len 1, seq_len 10: pages 3, 1; entry 2 is -1, past the live pages
//   slot 1: empty (seq_len 0, q_len 0); its row is garbage
//   slot 2: chunked prefill, q_len 5, seq_len 17: pages 0, 5, 2 (the last holds one key)
//   slot 3: seq_len 5 but q_len 0, so inactive; its row is garbage
// Token rows 6 and 7 are padding.
struct Call {
  static constexpr int64_t kTokens = 8;
  static constexpr int64_t kKvHeads = 2;
  static constexpr int64_t kHeadsPerKv = 2;
  static constexpr int64_t kHeadDim = 64;
  static constexpr int64_t kPages = 6;
  static constexpr int64_t kPageSize = 8;
  static constexpr int64_t kSlots = 4;
  static constexpr int64_t kMaxPages = 3;

  std::vector<float> q = std::vector<float>(kTokens * kKvHeads * kHeadsPerKv * kHeadDim, 0.5f);
  std::vector<float> k = std::vector<float>(kPages * kPageSize * kKvHeads * kHeadDim, 0.25f);
  std::vector<float> v = std::vector<float>(kPages * kPageSize * kKvHeads * kHeadDim, -1.0f);
  std::vector<int32_t> block_table = {3, 1, -1, -7, 999, kMin32, 0, 5, 2, -1, 6, kMax32};
  std::vector<int32_t> seq_lens = {10, 0, 17, 5};
  std::vector<int32_t> query_start_len = {0, 1, 1, 6, 6};
  std::vector<float> sinks = std::vector<float>(kKvHeads * kHeadsPerKv, 0.0f);
  std::vector<float> k_scale = {0.5f, 2.0f};  // per kv head, used by quantize()
  std::vector<float> v_scale = {0.25f};       // per tensor
  std::vector<float> out = std::vector<float>(q.size());
  std::vector<float> lse = std::vector<float>(kTokens * kKvHeads * kHeadsPerKv);

  AttentionInputs inputs;
  AttentionOptions options;
  AttentionOutputs outputs;

  Call() {
    inputs.q =
        TensorView::contiguous(q.data(), DType::kF32, {kTokens, kKvHeads, kHeadsPerKv, kHeadDim});
    inputs.k_cache =
        TensorView::contiguous(k.data(), DType::kF32, {kPages, kPageSize, kKvHeads, kHeadDim});
    inputs.v_cache =
        TensorView::contiguous(v.data(), DType::kF32, {kPages, kPageSize, kKvHeads, kHeadDim});
    inputs.block_table =
        TensorView::contiguous(block_table.data(), DType::kI32, {kSlots, kMaxPages});
    inputs.seq_lens = TensorView::contiguous(seq_lens.data(), DType::kI32, {kSlots});
    inputs.query_start_len =
        TensorView::contiguous(query_start_len.data(), DType::kI32, {kSlots + 1});
    inputs.sinks = TensorView::contiguous(sinks.data(), DType::kF32, {kKvHeads * kHeadsPerKv});
    outputs.out =
        TensorView::contiguous(out.data(), DType::kF32, {kTokens, kKvHeads, kHeadsPerKv, kHeadDim});
    outputs.lse = TensorView::contiguous(lse.data(), DType::kF32, {kTokens, kKvHeads, kHeadsPerKv});
    std::memset(out.data(), kSentinel, out.size() * sizeof(float));
    std::memset(lse.data(), kSentinel, lse.size() * sizeof(float));
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // Relabels q and the caches (the f32 buffers are more than large enough).
  void set_input_dtype(DType t) {
    inputs.q.dtype = t;
    inputs.k_cache.dtype = t;
    inputs.v_cache.dtype = t;
  }

  // Relabels the caches as fp8 e4m3 (the f32 buffers hold more than enough
  // bytes) with a per-kv-head k_scale and a per-tensor v_scale.
  void quantize() {
    inputs.k_cache = TensorView::contiguous(k.data(), DType::kF8E4M3,
                                            {kPages, kPageSize, kKvHeads, kHeadDim});
    inputs.v_cache = TensorView::contiguous(v.data(), DType::kF8E4M3,
                                            {kPages, kPageSize, kKvHeads, kHeadDim});
    inputs.k_scale = TensorView::contiguous(k_scale.data(), DType::kF32, {kKvHeads});
    inputs.v_scale = TensorView::contiguous(v_scale.data(), DType::kF32, {1});
  }

  int32_t& page(int64_t slot, int64_t p) { return block_table[slot * kMaxPages + p]; }

  bool outputs_untouched() const {
    for (const std::vector<float>* buffer : {&out, &lse}) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(buffer->data());
      for (size_t i = 0; i < buffer->size() * sizeof(float); ++i) {
        if (bytes[i] != kSentinel) return false;
      }
    }
    return true;
  }

  Status run(bool validate) const {
    return attention(inputs, options, outputs,
                     RunConfig{.backend = Backend::kReference, .threads = 1, .validate = validate});
  }
};

Status describe_and_check(const Call& call, Problem* problem) {
  RPA_RETURN_IF_ERROR(describe(call.inputs, call.options, &call.outputs, problem));
  return check_metadata(*problem);
}

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

// One way to break the hand-built call, and what the error must say.
struct Breakage {
  const char* name;
  void (*breaks)(Call&);
  StatusCode code;
  std::vector<std::string> mentions;
};

void PrintTo(const Breakage& b, std::ostream* os) { *os << b.name; }

void expect_rejected(const Breakage& b, bool validate) {
  Call call;
  b.breaks(call);
  const Status status = call.run(validate);
  EXPECT_EQ(status.code(), b.code) << status.message();
  for (const std::string& m : b.mentions) EXPECT_THAT(status.message(), HasSubstr(m));
  EXPECT_TRUE(call.outputs_untouched()) << "an error wrote to out or lse";
}

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;
constexpr StatusCode kUnsupported = StatusCode::kUnsupported;

// Errors found by describe(): ranks, extents, dtypes, supported sizes,
// strides, overflow, int32 limits, null data, aliasing and options.
const Breakage kShapeBreakages[] = {
    // Ranks.
    {"QRank", [](Call& c) { c.inputs.q.rank = 3; }, kInvalid, {"q.rank = 3 must be 4"}},
    {"QMissing", [](Call& c) { c.inputs.q = {}; }, kInvalid, {"q.rank = 0 must be 4"}},
    {"KCacheRank", [](Call& c) { c.inputs.k_cache.rank = 5; }, kInvalid, {"k_cache.rank = 5"}},
    {"VCacheRank", [](Call& c) { c.inputs.v_cache.rank = 3; }, kInvalid, {"v_cache.rank = 3"}},
    {"BlockTableRank",
     [](Call& c) { c.inputs.block_table.rank = 1; },
     kInvalid,
     {"block_table.rank = 1 must be 2"}},
    {"SeqLensRank",
     [](Call& c) { c.inputs.seq_lens.rank = 2; },
     kInvalid,
     {"seq_lens.rank = 2 must be 1"}},
    {"QueryStartLenRank",
     [](Call& c) { c.inputs.query_start_len = {}; },
     kInvalid,
     {"query_start_len.rank = 0 must be 1"}},
    {"SinksRank", [](Call& c) { c.inputs.sinks.rank = 2; }, kInvalid, {"sinks.rank = 2"}},
    {"OutRank", [](Call& c) { c.outputs.out.rank = 3; }, kInvalid, {"out.rank = 3 must be 4"}},
    {"LseRank", [](Call& c) { c.outputs.lse.rank = 4; }, kInvalid, {"lse.rank = 4 must be 3"}},
    // Extents.
    {"NegativeExtent",
     [](Call& c) { c.inputs.q.shape[1] = -2; },
     kInvalid,
     {"q.shape[1] = -2 is negative"}},
    {"NegativeMaxPages",
     [](Call& c) { c.inputs.block_table.shape[1] = -1; },
     kInvalid,
     {"block_table.shape[1] = -1 is negative"}},
    {"ZeroHeadsPerKv",
     [](Call& c) { c.inputs.q.shape[2] = 0; },
     kInvalid,
     {"q.shape[2] = 0 (heads_per_kv) must be positive"}},
    {"CacheKvHeads",
     [](Call& c) { c.inputs.k_cache.shape[2] = 1; },
     kInvalid,
     {"k_cache.shape[2] = 1 must equal q.shape[1] = 2 (num_kv_heads)"}},
    {"CacheHeadDim",
     [](Call& c) { c.inputs.k_cache.shape[3] = 32; },
     kInvalid,
     {"k_cache.shape[3] = 32 must equal q.shape[3] = 64 (head_dim)"}},
    {"VCachePages",
     [](Call& c) { c.inputs.v_cache.shape[0] = 5; },
     kInvalid,
     {"v_cache.shape[0] = 5 must equal k_cache.shape[0] = 6 (num_pages)"}},
    {"VCachePageSize",
     [](Call& c) { c.inputs.v_cache.shape[1] = 4; },
     kInvalid,
     {"v_cache.shape[1] = 4 must equal k_cache.shape[1] = 8 (page_size)"}},
    {"SeqLensBatch",
     [](Call& c) { c.inputs.seq_lens.shape[0] = 3; },
     kInvalid,
     {"seq_lens.shape[0] = 3 must equal block_table.shape[0] = 4 (batch_capacity)"}},
    {"QueryStartLenBatch",
     [](Call& c) { c.inputs.query_start_len.shape[0] = 4; },
     kInvalid,
     {"query_start_len.shape[0] = 4 must equal block_table.shape[0] + 1 = 5"}},
    {"SinksHeads",
     [](Call& c) { c.inputs.sinks.shape[0] = 3; },
     kInvalid,
     {"sinks.shape[0] = 3 must equal q.shape[1] * q.shape[2] = 4"}},
    {"OutTokens",
     [](Call& c) { c.outputs.out.shape[0] = 7; },
     kInvalid,
     {"out.shape[0] = 7 must equal q.shape[0] = 8 (num_tokens)"}},
    {"LseHeads",
     [](Call& c) { c.outputs.lse.shape[2] = 1; },
     kInvalid,
     {"lse.shape[2] = 1 must equal q.shape[2] = 2 (heads_per_kv)"}},
    // Dtypes.
    {"QDType",
     [](Call& c) { c.inputs.q.dtype = DType::kI32; },
     kUnsupported,
     {"q.dtype = i32 is not supported; supported: f32, bf16, f16"}},
    {"KCacheDType",
     [](Call& c) { c.inputs.k_cache.dtype = DType::kBF16; },
     kInvalid,
     {"k_cache.dtype = bf16 must be q.dtype (f32) or fp8_e4m3"}},
    {"VCacheDType",
     [](Call& c) { c.inputs.v_cache.dtype = DType::kF16; },
     kInvalid,
     {"v_cache.dtype = f16 must be k_cache.dtype (f32)"}},
    // fp8 caches and their scales.
    {"Fp8KeysWithF32Values",
     [](Call& c) {
       c.quantize();
       c.inputs.v_cache.dtype = DType::kF32;
     },
     kInvalid,
     {"v_cache.dtype = f32 must be k_cache.dtype (fp8_e4m3)"}},
    {"Fp8WithoutKScale",
     [](Call& c) {
       c.quantize();
       c.inputs.k_scale = {};
     },
     kInvalid,
     {"k_scale is missing: k_cache.dtype = fp8_e4m3 needs f32 scales [1] or [num_kv_heads]"}},
    {"Fp8WithoutVScale",
     [](Call& c) {
       c.quantize();
       c.inputs.v_scale = {};
     },
     kInvalid,
     {"v_scale is missing"}},
    {"ScaleWithoutFp8",
     [](Call& c) {
       c.inputs.v_scale = TensorView::contiguous(c.v_scale.data(), DType::kF32, {1});
     },
     kInvalid,
     {"v_scale is given but k_cache.dtype = f32: scales belong to fp8_e4m3 caches only"}},
    {"ScaleDType",
     [](Call& c) {
       c.quantize();
       c.inputs.k_scale.dtype = DType::kBF16;
     },
     kInvalid,
     {"k_scale.dtype = bf16 must be f32"}},
    {"ScaleRank",
     [](Call& c) {
       c.quantize();
       c.inputs.k_scale = TensorView::contiguous(c.k_scale.data(), DType::kF32, {1, 2});
     },
     kInvalid,
     {"k_scale.rank = 2 must be 1: k_scale is [1] or [num_kv_heads]"}},
    {"ScaleExtent",
     [](Call& c) {
       c.quantize();
       c.inputs.v_scale = TensorView::contiguous(c.q.data(), DType::kF32, {3});
     },
     kInvalid,
     {"v_scale.shape[0] = 3 must be 1 (per tensor) or q.shape[1] = 2 (num_kv_heads, per kv "
      "head)"}},
    {"ScaleNullData",
     [](Call& c) {
       c.quantize();
       c.inputs.k_scale.data = nullptr;
     },
     kInvalid,
     {"k_scale.data is null but k_scale has 2 elements"}},
    // fp8 scale values, checked even without validation: they change per layer.
    {"ZeroKScale",
     [](Call& c) {
       c.quantize();
       c.k_scale[1] = 0.0f;
     },
     kInvalid,
     {"k_scale[1] = 0 must be finite and positive"}},
    {"NegativeKScale",
     [](Call& c) {
       c.quantize();
       c.k_scale[0] = -0.5f;
     },
     kInvalid,
     {"k_scale[0] = -0.5 must be finite and positive"}},
    {"NanVScale",
     [](Call& c) {
       c.quantize();
       c.v_scale[0] = kNan;
     },
     kInvalid,
     {"v_scale[0] = nan must be finite and positive"}},
    {"InfiniteVScale",
     [](Call& c) {
       c.quantize();
       c.v_scale[0] = kInf;
     },
     kInvalid,
     {"v_scale[0] = inf must be finite and positive"}},
    {"ScaleInsideOut",
     [](Call& c) {
       c.quantize();
       c.inputs.v_scale.data = c.out.data() + 3;
     },
     kInvalid,
     {"out overlaps v_scale"}},
    {"OutDType",
     [](Call& c) {
       c.set_input_dtype(DType::kBF16);
       c.outputs.out.dtype = DType::kF16;
     },
     kInvalid,
     {"out.dtype = f16 must be q.dtype (bf16) or f32"}},
    {"LseDType",
     [](Call& c) { c.outputs.lse.dtype = DType::kBF16; },
     kInvalid,
     {"lse.dtype = bf16 must be f32"}},
    {"SinksDType",
     [](Call& c) { c.inputs.sinks.dtype = DType::kF16; },
     kInvalid,
     {"sinks.dtype = f16 must be f32"}},
    {"BlockTableDType",
     [](Call& c) { c.inputs.block_table.dtype = DType::kF32; },
     kInvalid,
     {"block_table.dtype = f32 must be i32"}},
    {"SeqLensDType",
     [](Call& c) { c.inputs.seq_lens.dtype = DType::kF32; },
     kInvalid,
     {"seq_lens.dtype = f32 must be i32"}},
    {"QueryStartLenDType",
     [](Call& c) { c.inputs.query_start_len.dtype = DType::kBF16; },
     kInvalid,
     {"query_start_len.dtype = bf16 must be i32"}},
    // Supported sizes: the message lists the table.
    {"HeadDim",
     [](Call& c) { c.inputs.q.shape[3] = 72; },
     kUnsupported,
     {"q.shape[3] = 72 (head_dim) is not supported; supported: 64, 80, 96, 128, 256"}},
    {"PageSize",
     [](Call& c) { c.inputs.k_cache.shape[1] = 12; },
     kUnsupported,
     {"k_cache.shape[1] = 12 (page_size) is not supported; supported: 1, 2, 4, 8, 16, 32, 64, "
      "128"}},
    // Strides.
    {"QLastStride",
     [](Call& c) { c.inputs.q.strides[3] = 2; },
     kInvalid,
     {"q.strides[3] = 2 must be 1"}},
    {"KCacheLastStride",
     [](Call& c) { c.inputs.k_cache.strides[3] = -1; },
     kInvalid,
     {"k_cache.strides[3] = -1 must be 1"}},
    {"OutLastStride",
     [](Call& c) { c.outputs.out.strides[3] = 0; },
     kInvalid,
     {"out.strides[3] = 0 must be 1"}},
    {"LseLastStride",
     [](Call& c) { c.outputs.lse.strides[2] = 2; },
     kInvalid,
     {"lse.strides[2] = 2 must be 1"}},
    {"ZeroStride",
     [](Call& c) { c.inputs.k_cache.strides[0] = 0; },
     kInvalid,
     {"k_cache.strides[0] = 0 must be positive (k_cache.shape[0] = 6)"}},
    {"NegativeStride",
     [](Call& c) { c.inputs.q.strides[1] = -128; },
     kInvalid,
     {"q.strides[1] = -128 must be positive"}},
    {"BlockTableColumnStride",
     [](Call& c) { c.inputs.block_table.strides[1] = 2; },
     kInvalid,
     {"block_table.strides[1] = 2 must be 1"}},
    {"BlockTableRowStride",
     [](Call& c) { c.inputs.block_table.strides[0] = 2; },
     kInvalid,
     {"block_table.strides[0] = 2 must be at least block_table.shape[1] = 3"}},
    {"SeqLensStride",
     [](Call& c) { c.inputs.seq_lens.strides[0] = 2; },
     kInvalid,
     {"seq_lens.strides[0] = 2 must be 1"}},
    {"QueryStartLenStride",
     [](Call& c) { c.inputs.query_start_len.strides[0] = 0; },
     kInvalid,
     {"query_start_len.strides[0] = 0 must be 1"}},
    {"SinksStride",
     [](Call& c) { c.inputs.sinks.strides[0] = 3; },
     kInvalid,
     {"sinks.strides[0] = 3 must be 1"}},
    {"OutOverlapsItself",
     [](Call& c) { c.outputs.out.strides[0] = 128; },
     kInvalid,
     {"out.strides[0] = 128 is less than out.shape[1] * out.strides[1] = 2 * 128",
      "distinct elements of out would share memory"}},
    {"LseOverlapsItself",
     [](Call& c) { c.outputs.lse.strides[0] = 2; },
     kInvalid,
     {"lse.strides[0] = 2 is less than lse.shape[1] * lse.strides[1] = 2 * 2"}},
    // Sizes whose products overflow.
    {"ExtentProduct",
     [](Call& c) { c.inputs.k_cache.shape[0] = int64_t{1} << 60; },
     kInvalid,
     {"k_cache.shape = [1152921504606846976, 8, 2, 64]", "overflows int64"}},
    {"StrideProduct",
     [](Call& c) { c.inputs.q.strides[0] = int64_t{1} << 62; },
     kInvalid,
     {"q.shape[0] = 8 with q.strides[0] = 4611686018427387904", "overflows int64"}},
    {"ByteSize",
     [](Call& c) { c.inputs.v_cache.strides[0] = int64_t{1} << 60; },
     kInvalid,
     {"byte size of v_cache", "overflows int64"}},
    {"AddressSpace",
     [](Call& c) { c.inputs.seq_lens.data = reinterpret_cast<void*>(~uintptr_t{0} - 8); },
     kInvalid,
     {"seq_lens.data = 0x", "past the end of the address space"}},
    // Extents the plan's int32 fields cannot hold.
    {"Int32Tokens",
     [](Call& c) { c.inputs.q.shape[0] = int64_t{1} << 31; },
     kInvalid,
     {"q.shape[0] = 2147483648 (num_tokens) exceeds 2147483647"}},
    {"Int32Heads",
     [](Call& c) { c.inputs.q.shape[1] = c.inputs.q.shape[2] = int64_t{1} << 16; },
     kInvalid,
     {"q.shape[1] * q.shape[2] = 4294967296 (query heads) exceeds 2147483647"}},
    {"Int32Pages",
     [](Call& c) { c.inputs.k_cache.shape[0] = int64_t{1} << 31; },
     kInvalid,
     {"k_cache.shape[0] = 2147483648 (num_pages) exceeds 2147483647"}},
    {"Int32Slots",
     [](Call& c) { c.inputs.block_table.shape[0] = int64_t{1} << 31; },
     kInvalid,
     {"block_table.shape[0] = 2147483648 (batch_capacity) exceeds 2147483647"}},
    {"Int32KeyPositions",
     [](Call& c) {
       c.inputs.block_table.shape[1] = c.inputs.block_table.strides[0] = int64_t{1} << 28;
     },
     kInvalid,
     {"block_table.shape[1] = 268435456 (max_pages_per_seq) * page_size 8 exceeds"}},
    // Null data for non-empty tensors.
    {"NullQ",
     [](Call& c) { c.inputs.q.data = nullptr; },
     kInvalid,
     {"q.data is null but q has 2048 elements"}},
    {"NullBlockTable",
     [](Call& c) { c.inputs.block_table.data = nullptr; },
     kInvalid,
     {"block_table.data is null but block_table has 12 elements"}},
    {"NullOut",
     [](Call& c) { c.outputs.out.data = nullptr; },
     kInvalid,
     {"out.data is null but out has 2048 elements"}},
    // Outputs aliasing an input or each other.
    {"OutIsQ", [](Call& c) { c.outputs.out.data = c.q.data(); }, kInvalid, {"out overlaps q"}},
    {"OutInsideKCache",
     [](Call& c) { c.outputs.out.data = c.k.data() + 100; },
     kInvalid,
     {"out overlaps k_cache", "outputs must not alias"}},
    // An input placed inside an output's buffer, so that no other input is near.
    {"SinksInsideOut",
     [](Call& c) { c.inputs.sinks.data = c.out.data() + 64; },
     kInvalid,
     {"out overlaps sinks"}},
    {"BlockTableInsideLse",
     [](Call& c) { c.inputs.block_table.data = c.lse.data() + 4; },
     kInvalid,
     {"lse overlaps block_table"}},
    {"LseInsideOut",
     [](Call& c) { c.outputs.lse.data = c.out.data() + 100; },
     kInvalid,
     {"lse overlaps out"}},
    // Options.
    {"NanScale",
     [](Call& c) { c.options.scale = kNan; },
     kInvalid,
     {"options.scale = nan must be finite"}},
    {"InfiniteScale",
     [](Call& c) { c.options.scale = -kInf; },
     kInvalid,
     {"options.scale = -inf must be finite"}},
    {"NegativeWindow",
     [](Call& c) { c.options.sliding_window = -1; },
     kInvalid,
     {"options.sliding_window = -1 must be >= 0"}},
    {"NegativeSoftCap",
     [](Call& c) { c.options.logit_soft_cap = -1.5f; },
     kInvalid,
     {"options.logit_soft_cap = -1.5 must be finite and >= 0"}},
    {"InfiniteSoftCap",
     [](Call& c) { c.options.logit_soft_cap = kInf; },
     kInvalid,
     {"options.logit_soft_cap = inf"}},
    {"NanSoftCap",
     [](Call& c) { c.options.logit_soft_cap = kNan; },
     kInvalid,
     {"options.logit_soft_cap = nan"}},
};

// Errors found by check_metadata(): the values of query_start_len, seq_lens
// and the live block_table entries.
const Breakage kMetadataBreakages[] = {
    {"QueryStartNotZero",
     [](Call& c) { c.query_start_len[0] = 1; },
     kInvalid,
     {"query_start_len[0] = 1 must be 0"}},
    {"QueryStartDecreases",
     [](Call& c) { c.query_start_len[2] = 0; },
     kInvalid,
     {"query_start_len[2] = 0 is less than query_start_len[1] = 1"}},
    {"QueryStartPastTokens",
     [](Call& c) { c.query_start_len[4] = 9; },
     kInvalid,
     {"query_start_len[4] = 9 exceeds num_tokens = 8"}},
    {"NegativeSeqLen",
     [](Call& c) { c.seq_lens[1] = -3; },
     kInvalid,
     {"seq_lens[1] = -3 is negative"}},
    {"QueryLongerThanSeq",
     [](Call& c) { c.seq_lens[2] = 4; },
     kInvalid,
     {"seq_lens[2] = 4: q_len 5 (query_start_len[3] - query_start_len[2]) exceeds it"}},
    {"SeqPastBlockTable",
     [](Call& c) { c.seq_lens[2] = 25; },
     kInvalid,
     {"seq_lens[2] = 25 exceeds max_pages_per_seq * page_size = 3 * 8 = 24"}},
    // Lengths are checked for slots without query rows too; their pages are not.
    {"IdleSeqPastBlockTable",
     [](Call& c) { c.seq_lens[3] = 100; },
     kInvalid,
     {"seq_lens[3] = 100 exceeds max_pages_per_seq * page_size = 3 * 8 = 24"}},
    {"LivePageMinusOne",
     [](Call& c) { c.page(2, 1) = -1; },
     kInvalid,
     {"block_table[2, 1] = -1 is inside the live range of slot 2 (seq_len 17, page_size 8)"}},
    {"LivePagePastPool",
     [](Call& c) { c.page(0, 1) = 6; },
     kInvalid,
     {"block_table[0, 1] = 6 is inside the live range of slot 0", "[0, 6)"}},
    {"LastPartialPage",
     [](Call& c) { c.page(2, 2) = kMax32; },
     kInvalid,
     {"block_table[2, 2] = 2147483647 is inside the live range of slot 2"}},
};

std::string breakage_name(const ::testing::TestParamInfo<Breakage>& info) {
  return info.param.name;
}

class ShapeError : public ::testing::TestWithParam<Breakage> {};

// validate = false skips only the metadata checks: shapes are always checked.
TEST_P(ShapeError, IsRejectedWithOrWithoutValidation) {
  expect_rejected(GetParam(), true);
  expect_rejected(GetParam(), false);
}

INSTANTIATE_TEST_SUITE_P(Validate, ShapeError, ::testing::ValuesIn(kShapeBreakages), breakage_name);

class MetadataError : public ::testing::TestWithParam<Breakage> {};

TEST_P(MetadataError, IsRejected) { expect_rejected(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(Validate, MetadataError, ::testing::ValuesIn(kMetadataBreakages),
                         breakage_name);

}  // namespace
}  // namespace rpa
