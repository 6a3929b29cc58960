// Concurrent use (docs/robustness.md): several std::threads calling
// rpa::attention and the C API at once on shared inputs with outputs of
// their own, one plan run from several threads, and the C API's per-thread
// error messages. Part of rpa_tests, and alone in rpa_concurrency_tests,
// which the `tsan` preset builds under ThreadSanitizer.
//
// Most calls use one OpenMP thread (RunConfig::threads = 1): the concurrency
// under test is the caller's threads. Concurrency.OpenMpTeams* run teams of
// two: the OpenMP runtime is not instrumented, so under TSan they need
// Archer, LLVM's OpenMP tool that tells TSan about a team's barriers and
// hand-overs (tests/CMakeLists.txt loads it where it is installed); without
// it they are skipped there, as TSan would report the team's hand-overs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "c_views.h"
#include "generate/batch.h"
#include "owned_outputs.h"
#include "rpa/plan.h"
#include "rpa/rpa.h"

namespace rpa {
namespace {

constexpr int kThreads = 4;

#if defined(__SANITIZE_THREAD__)
constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kUnderTsan = true;
#else
constexpr bool kUnderTsan = false;
#endif
#else
constexpr bool kUnderTsan = false;
#endif

// Whether OpenMP teams may run here: always, except under TSan without Archer.
bool teams_checkable() {
  const char* tools = std::getenv("OMP_TOOL_LIBRARIES");
  return !kUnderTsan || (tools != nullptr && std::strstr(tools, "archer") != nullptr);
}
constexpr int kRounds = 3;

gen::Batch shared_batch() {
  gen::BatchSpec spec;
  spec.seed = 23;
  spec.batch_capacity = 6;
  spec.num_active = 4;
  spec.max_context = 2500;  // some decode rows split: partials and merges
  spec.max_chunk = 24;
  spec.max_prompt = 24;
  spec.lse = true;
  return gen::generate(spec);
}

// Bytewise: dead rows of lse keep a NaN sentinel, which == never matches.
bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs body(i) on kThreads threads at once.
template <typename Body>
void on_threads(const Body& body) {
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back([&body, i] { body(i); });
  for (std::thread& t : threads) t.join();
}

TEST(Concurrency, AttentionFromManyThreadsOnSharedInputs) {
  const gen::Batch batch = shared_batch();
  for (Backend backend : {Backend::kCpu, Backend::kReference}) {
    Outputs want = make_outputs(batch);
    ASSERT_TRUE(attention(batch.inputs(), batch.spec.options, want.views, {backend, 1}).ok());
    std::vector<Outputs> got;
    for (int i = 0; i < kThreads; ++i) got.push_back(make_outputs(batch));
    on_threads([&](int i) {
      for (int r = 0; r < kRounds; ++r) {
        const Status s = attention(batch.inputs(), batch.spec.options, got[i].views, {backend, 1});
        EXPECT_TRUE(s.ok()) << s.message();
      }
    });
    for (const Outputs& o : got) {  // deterministic: the same bits on every thread
      EXPECT_EQ(o.out, want.out) << backend_name(backend);
      EXPECT_TRUE(same_bytes(o.lse, want.lse)) << backend_name(backend);
    }
  }
}

TEST(Concurrency, OnePlanRunFromManyThreads) {
  const gen::Batch batch = shared_batch();
  Plan plan;
  ASSERT_TRUE(make_plan(batch.inputs(), batch.spec.options, &plan, {}, Backend::kCpu).ok());
  Outputs want = make_outputs(batch);
  ASSERT_TRUE(run(plan, batch.inputs(), want.views, {Backend::kCpu, 1}).ok());
  const int64_t bytes = workspace_bytes(plan, {Backend::kCpu, 1});
  std::vector<Outputs> got;
  for (int i = 0; i < kThreads; ++i) got.push_back(make_outputs(batch));
  on_threads([&](int i) {
    // Half the threads bring a workspace of their own, half let rpa allocate.
    std::vector<char> workspace(i % 2 == 0 ? static_cast<size_t>(bytes) : 0);
    RunConfig config{Backend::kCpu, 1};
    if (!workspace.empty()) config.workspace = workspace.data(), config.workspace_size = bytes;
    for (int r = 0; r < kRounds; ++r) {
      const Status s = run(plan, batch.inputs(), got[i].views, config);
      EXPECT_TRUE(s.ok()) << s.message();
    }
  });
  for (const Outputs& o : got) {
    EXPECT_EQ(o.out, want.out);
    EXPECT_TRUE(same_bytes(o.lse, want.lse));
  }
}

TEST(Concurrency, CApiCallsAndPlanRunsFromManyThreads) {
  const gen::Batch batch = shared_batch();
  const rpa_attention_inputs in = to_c(batch.inputs());
  const rpa_layer_inputs layer = to_c_layer(batch.inputs());
  rpa_options options{};
  options.backend = RPA_BACKEND_CPU;
  options.threads = 1;
  Outputs want = make_outputs(batch);
  const rpa_attention_outputs want_c = to_c(want.views);
  ASSERT_EQ(rpa_attention(&in, &options, &want_c), RPA_OK) << rpa_last_error_message();
  rpa_plan* plan = nullptr;
  ASSERT_EQ(rpa_plan_create(&in, &options, &plan), RPA_OK) << rpa_last_error_message();
  std::vector<Outputs> one_shot, planned;
  for (int i = 0; i < kThreads; ++i) {
    one_shot.push_back(make_outputs(batch));
    planned.push_back(make_outputs(batch));
  }
  on_threads([&](int i) {
    const rpa_attention_outputs a = to_c(one_shot[i].views), p = to_c(planned[i].views);
    for (int r = 0; r < kRounds; ++r) {
      EXPECT_EQ(rpa_attention(&in, &options, &a), RPA_OK) << rpa_last_error_message();
      EXPECT_EQ(rpa_plan_run(plan, &layer, &p), RPA_OK) << rpa_last_error_message();
    }
  });
  rpa_plan_destroy(plan);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(one_shot[i].out, want.out);
    EXPECT_EQ(planned[i].out, want.out);
  }
}

// Teams of two OpenMP threads, from the calling thread and from several
// callers at once, one-shot and as plan runs with caller workspace: the same
// bits as one thread (tasks and merges are each one thread's, whichever).
TEST(Concurrency, OpenMpTeamsFromManyThreads) {
  if (!teams_checkable()) GTEST_SKIP() << "TSan without Archer cannot see OpenMP's synchronization";
  const gen::Batch batch = shared_batch();
  Outputs want = make_outputs(batch);
  ASSERT_TRUE(attention(batch.inputs(), batch.spec.options, want.views, {Backend::kCpu, 1}).ok());
  Outputs team = make_outputs(batch);
  ASSERT_TRUE(attention(batch.inputs(), batch.spec.options, team.views, {Backend::kCpu, 2}).ok());
  EXPECT_EQ(team.out, want.out);
  EXPECT_TRUE(same_bytes(team.lse, want.lse));
  Plan plan;
  ASSERT_TRUE(make_plan(batch.inputs(), batch.spec.options, &plan, {}, Backend::kCpu).ok());
  const int64_t bytes = workspace_bytes(plan, {Backend::kCpu, 2});
  std::vector<Outputs> one_shot, planned;
  for (int i = 0; i < kThreads; ++i) {
    one_shot.push_back(make_outputs(batch));
    planned.push_back(make_outputs(batch));
  }
  on_threads([&](int i) {
    std::vector<char> workspace(static_cast<size_t>(bytes));
    RunConfig config{Backend::kCpu, 2};
    config.workspace = workspace.data();
    config.workspace_size = bytes;
    for (int r = 0; r < kRounds; ++r) {
      Status s = attention(batch.inputs(), batch.spec.options, one_shot[i].views, {Backend::kCpu, 2});
      EXPECT_TRUE(s.ok()) << s.message();
      s = run(plan, batch.inputs(), planned[i].views, config);
      EXPECT_TRUE(s.ok()) << s.message();
    }
  });
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(one_shot[i].out, want.out);
    EXPECT_TRUE(same_bytes(one_shot[i].lse, want.lse));
    EXPECT_EQ(planned[i].out, want.out);
    EXPECT_TRUE(same_bytes(planned[i].lse, want.lse));
  }
}

// Every thread fails in its own way, succeeds, and fails again, interleaved
// with the others: each reads back its own message, and "" after success.
TEST(Concurrency, CApiErrorMessagesArePerThread) {
  const gen::Batch batch = shared_batch();
  const rpa_attention_inputs in = to_c(batch.inputs());
  std::vector<Outputs> got;
  for (int i = 0; i < kThreads; ++i) got.push_back(make_outputs(batch));
  on_threads([&](int i) {
    const rpa_attention_outputs out = to_c(got[i].views);
    rpa_options bad{};
    bad.backend = RPA_BACKEND_CPU;
    bad.threads = 1;
    bad.sliding_window = -(i + 1);
    rpa_options good = bad;
    good.sliding_window = 0;
    const std::string mine = "options.sliding_window = " + std::to_string(-(i + 1));
    for (int r = 0; r < 20; ++r) {
      EXPECT_EQ(rpa_attention(&in, &bad, &out), RPA_INVALID_ARGUMENT);
      const std::string message = rpa_last_error_message();
      EXPECT_EQ(message.rfind(mine, 0), 0u) << "thread " << i << " read: " << message;
      if (r % 5 == 0) {
        EXPECT_EQ(rpa_attention(&in, &good, &out), RPA_OK) << rpa_last_error_message();
        EXPECT_STREQ(rpa_last_error_message(), "");
      }
    }
  });
}

}  // namespace
}  // namespace rpa
