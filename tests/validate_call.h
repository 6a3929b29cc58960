// The hand-built call of the contract-check tests (validate_test.cc,
// validate_shape_errors_test.cc, validate_metadata_errors_test.cc) and the
// one way they break it and expect it refused.
#pragma once

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

namespace rpa::validate_test {

using ::testing::HasSubstr;

inline constexpr unsigned char kSentinel = 0xa5;
inline constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
inline constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();

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

inline Status describe_and_check(const Call& call, Problem* problem) {
  RPA_RETURN_IF_ERROR(describe(call.inputs, call.options, &call.outputs, problem));
  return check_metadata(*problem);
}

// One way to break the hand-built call, and what the error must say.
struct Breakage {
  const char* name;
  void (*breaks)(Call&);
  StatusCode code;
  std::vector<std::string> mentions;
};

inline void PrintTo(const Breakage& b, std::ostream* os) { *os << b.name; }

inline void expect_rejected(const Breakage& b, bool validate) {
  Call call;
  b.breaks(call);
  const Status status = call.run(validate);
  EXPECT_EQ(status.code(), b.code) << status.message();
  for (const std::string& m : b.mentions) EXPECT_THAT(status.message(), HasSubstr(m));
  EXPECT_TRUE(call.outputs_untouched()) << "an error wrote to out or lse";
}

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;
inline constexpr StatusCode kUnsupported = StatusCode::kUnsupported;

inline std::string breakage_name(const ::testing::TestParamInfo<Breakage>& info) {
  return info.param.name;
}

}  // namespace rpa::validate_test
