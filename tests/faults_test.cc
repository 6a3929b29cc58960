// Allocation failure and caller-owned workspace (docs/robustness.md): memory
// that cannot be had becomes a status naming the bytes wanted, in C++ and C,
// with nothing written; a caller's workspace of workspace_bytes() is enough
// and one byte less is refused.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "c_views.h"
#include "cpu/cpu.h"
#include "generate/batch.h"
#include "owned_outputs.h"
#include "rpa/plan.h"
#include "rpa/rpa.h"

namespace rpa {
namespace {

// Injected failure for the test's scope: every workspace allocation above
// `bytes` fails as if memory had run out.
struct AllocationLimit {
  explicit AllocationLimit(int64_t bytes) { cpu::set_allocation_limit_for_testing(bytes); }
  ~AllocationLimit() { cpu::set_allocation_limit_for_testing(-1); }
};

// A batch with split decode rows (so the run needs partials) and prefill.
gen::Batch small_batch() {
  gen::BatchSpec spec;
  spec.seed = 19;
  spec.batch_capacity = 6;
  spec.num_active = 4;
  spec.min_context = 2100;
  spec.max_context = 5000;
  spec.max_chunk = 20;
  spec.max_prompt = 20;
  spec.lse = true;
  return gen::generate(spec);
}

// Bytewise: the lse sentinel is a NaN pattern, which == never matches.
template <typename T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

bool untouched(const Outputs& o, const gen::Batch& batch) {
  return o.out == batch.make_out() && same_bytes(o.lse, batch.make_lse());
}

// The bytes a message says were wanted ("cannot allocate N bytes"), or -1.
int64_t bytes_wanted(const std::string& message) {
  const std::string lead = "cannot allocate ";
  const size_t at = message.find(lead);
  if (at == std::string::npos) return -1;
  size_t digits = 0;
  const int64_t bytes = std::stoll(message.substr(at + lead.size()), &digits);
  return message.compare(at + lead.size() + digits, 6, " bytes") == 0 ? bytes : -1;
}

TEST(Faults, InjectedAllocationFailureIsAStatusWithTheBytes) {
  const gen::Batch batch = small_batch();
  Outputs o = make_outputs(batch);
  const AllocationLimit limit(1024);
  const Status s = attention(batch.inputs(), batch.spec.options, o.views, {Backend::kCpu});
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_GT(bytes_wanted(s.message()), 1024) << s.message();
  EXPECT_TRUE(untouched(o, batch));

  Plan plan;
  ASSERT_TRUE(make_plan(batch.inputs(), batch.spec.options, &plan, {}, Backend::kCpu).ok());
  const Status r = run(plan, batch.inputs(), o.views, {Backend::kCpu});
  EXPECT_EQ(r.code(), StatusCode::kInternal);
  EXPECT_GT(bytes_wanted(r.message()), 1024) << r.message();
  EXPECT_TRUE(untouched(o, batch));
}

TEST(Faults, InjectedAllocationFailureThroughTheCApi) {
  const gen::Batch batch = small_batch();
  Outputs o = make_outputs(batch);
  const rpa_attention_inputs in = to_c(batch.inputs());
  const rpa_attention_outputs out = to_c(o.views);
  rpa_options options{};
  options.backend = RPA_BACKEND_CPU;
  const AllocationLimit limit(1024);
  EXPECT_EQ(rpa_attention(&in, &options, &out), RPA_INTERNAL);
  EXPECT_GT(bytes_wanted(rpa_last_error_message()), 1024) << rpa_last_error_message();
  EXPECT_TRUE(untouched(o, batch));

  rpa_plan* plan = nullptr;
  ASSERT_EQ(rpa_plan_create(&in, &options, &plan), RPA_OK) << rpa_last_error_message();
  const rpa_layer_inputs layer = to_c_layer(batch.inputs());
  EXPECT_EQ(rpa_plan_run(plan, &layer, &out), RPA_INTERNAL);
  EXPECT_GT(bytes_wanted(rpa_last_error_message()), 1024) << rpa_last_error_message();
  EXPECT_TRUE(untouched(o, batch));
  rpa_plan_destroy(plan);
}

TEST(Faults, CallerWorkspaceNeedsNoAllocationAndIsChecked) {
  const gen::Batch batch = small_batch();
  Outputs want = make_outputs(batch);
  ASSERT_TRUE(attention(batch.inputs(), batch.spec.options, want.views, {Backend::kCpu, 2}).ok());

  Plan plan;
  ASSERT_TRUE(make_plan(batch.inputs(), batch.spec.options, &plan, {}, Backend::kCpu).ok());
  RunConfig config{Backend::kCpu, 2};
  const int64_t bytes = workspace_bytes(plan, config);
  ASSERT_GT(bytes, 0);
  EXPECT_EQ(workspace_bytes(plan, RunConfig{Backend::kReference}), 0);
  std::vector<char> workspace(static_cast<size_t>(bytes) + 1);
  config.workspace = workspace.data() + 1;  // any alignment
  config.workspace_size = bytes - 1;
  Outputs got = make_outputs(batch);
  const Status small = run(plan, batch.inputs(), got.views, config);
  EXPECT_EQ(small.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.message().find("workspace_size = " + std::to_string(bytes - 1)), std::string::npos)
      << small.message();
  EXPECT_TRUE(untouched(got, batch));

  // With its workspace the run allocates nothing of its own, so even a limit
  // of 0 bytes cannot make it fail, and its result is the one-shot call's.
  const AllocationLimit limit(0);
  config.workspace_size = bytes;
  const Status s = run(plan, batch.inputs(), got.views, config);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(got.out, want.out);
  EXPECT_TRUE(same_bytes(got.lse, want.lse));
}

TEST(Faults, CallerWorkspaceThroughTheCApi) {
  const gen::Batch batch = small_batch();
  Outputs want = make_outputs(batch), got = make_outputs(batch);
  const rpa_attention_inputs in = to_c(batch.inputs());
  rpa_options options{};
  options.backend = RPA_BACKEND_CPU;
  options.threads = 2;
  const rpa_attention_outputs want_c = to_c(want.views), got_c = to_c(got.views);
  ASSERT_EQ(rpa_attention(&in, &options, &want_c), RPA_OK);
  rpa_plan* plan = nullptr;
  ASSERT_EQ(rpa_plan_create(&in, &options, &plan), RPA_OK) << rpa_last_error_message();
  int64_t bytes = 0;
  ASSERT_EQ(rpa_plan_workspace_bytes(plan, &bytes), RPA_OK);
  ASSERT_GT(bytes, 0);
  std::vector<char> workspace(static_cast<size_t>(bytes));
  const rpa_layer_inputs layer = to_c_layer(batch.inputs());
  EXPECT_EQ(rpa_plan_run_with_workspace(plan, &layer, &got_c, workspace.data(), bytes - 1),
            RPA_INVALID_ARGUMENT);
  EXPECT_TRUE(untouched(got, batch));
  {
    const AllocationLimit limit(0);
    ASSERT_EQ(rpa_plan_run_with_workspace(plan, &layer, &got_c, workspace.data(), bytes), RPA_OK)
        << rpa_last_error_message();
  }
  EXPECT_EQ(got.out, want.out);
  rpa_plan_destroy(plan);
}

// Whether a huge allocation really fails here: under a sanitizer it aborts
// (its allocator's own limit) and with overcommit_memory = 1 it succeeds.
bool huge_allocations_fail() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return false;
#endif
#endif
  std::ifstream mode("/proc/sys/vm/overcommit_memory");
  int overcommit = 0;
  return !(mode >> overcommit) || overcommit != 1;
}

// A valid batch of one decode row at a 118M-token context and 65536 query
// heads: its split-KV partials need about 1 TB, what no machine we run on has.
// The inputs stay small: every live block_table entry names page 0.
TEST(Faults, HugeValidBatchIsAStatusWithTheBytes) {
  if (!huge_allocations_fail()) GTEST_SKIP() << "huge allocations do not fail in this build";
  const int64_t heads = 65536, dim = 64, page = 128, per_seq = 922'000;
  std::vector<uint16_t> q(heads * dim, 0x3f80), k(page * dim, 0x3f80), v(page * dim, 0x3f80);
  std::vector<int32_t> block_table(per_seq, 0), seq_lens{static_cast<int32_t>(per_seq * page)},
      query_start_len{0, 1};
  AttentionInputs in;
  in.q = TensorView::contiguous(q.data(), DType::kBF16, {1, 1, heads, dim});
  in.k_cache = TensorView::contiguous(k.data(), DType::kBF16, {1, page, 1, dim});
  in.v_cache = TensorView::contiguous(v.data(), DType::kBF16, {1, page, 1, dim});
  in.block_table = TensorView::contiguous(block_table.data(), DType::kI32, {1, per_seq});
  in.seq_lens = TensorView::contiguous(seq_lens.data(), DType::kI32, {1});
  in.query_start_len = TensorView::contiguous(query_start_len.data(), DType::kI32, {2});
  std::vector<uint16_t> out(heads * dim, 0xabcd);
  AttentionOutputs outputs{TensorView::contiguous(out.data(), DType::kBF16, {1, 1, heads, dim}), {}};
  const Status s = attention(in, {}, outputs, {Backend::kCpu, 1});
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_GT(bytes_wanted(s.message()), int64_t{1} << 39) << s.message();
  EXPECT_EQ(out, std::vector<uint16_t>(heads * dim, 0xabcd));

  const rpa_attention_inputs c_in = to_c(in);
  const rpa_attention_outputs c_out = to_c(outputs);
  rpa_options options{};
  options.backend = RPA_BACKEND_CPU;
  options.threads = 1;
  EXPECT_EQ(rpa_attention(&c_in, &options, &c_out), RPA_INTERNAL);
  EXPECT_GT(bytes_wanted(rpa_last_error_message()), int64_t{1} << 39) << rpa_last_error_message();
}

}  // namespace
}  // namespace rpa
