// The contract checks of docs/contract.md §3 that describe() makes: each case
// breaks the hand-built call (validate_call.h) one way and expects the error
// to name the tensor, index and value, with out and lse untouched.

#include "validate_call.h"

namespace rpa {
namespace {

using namespace validate_test;

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

class ShapeError : public ::testing::TestWithParam<Breakage> {};

// validate = false skips only the metadata checks: shapes are always checked.
TEST_P(ShapeError, IsRejectedWithOrWithoutValidation) {
  expect_rejected(GetParam(), true);
  expect_rejected(GetParam(), false);
}

INSTANTIATE_TEST_SUITE_P(Validate, ShapeError, ::testing::ValuesIn(kShapeBreakages), breakage_name);

}  // namespace
}  // namespace rpa
