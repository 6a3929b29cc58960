// A steady-state plan run with caller-owned workspace allocates nothing on
// the heap (docs/robustness.md). Its own executable, rpa_alloc_tests: it
// replaces the global operator new and interposes malloc & co. (glibc), in
// every thread, so that it counts what the library, the C++ runtime and
// OpenMP allocate during one call. Not built under sanitizers, which own
// malloc themselves.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <new>
#include <vector>

#include "c_views.h"
#include "generate/batch.h"
#include "owned_outputs.h"
#include "rpa/plan.h"
#include "rpa/rpa.h"

namespace {

std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};

void count() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);

void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* memalign(size_t alignment, size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(size_t alignment, size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** p, size_t alignment, size_t n) {
  count();
  *p = __libc_memalign(alignment, n);
  return *p != nullptr || n == 0 ? 0 : ENOMEM;
}
}  // extern "C"

// operator new goes through the malloc above (libstdc++ does), but is
// replaced too so that no path around it is missed.
void* operator new(size_t n) {
  if (void* p = malloc(n != 0 ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, std::align_val_t a) {
  if (void* p = aligned_alloc(static_cast<size_t>(a), n != 0 ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }
void operator delete(void* p, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { free(p); }

namespace rpa {
namespace {

// Heap allocations made by `call`, on every thread.
template <typename Call>
int64_t allocations_in(const Call& call) {
  allocations = 0;
  counting = true;
  call();
  counting = false;
  return allocations.load();
}

// Decode rows long enough to split (partials), chunks and prompts (prefill).
gen::Batch batch() {
  gen::BatchSpec spec;
  spec.seed = 7;
  spec.batch_capacity = 8;
  spec.num_active = 6;
  spec.min_context = 2100;
  spec.max_context = 6000;
  spec.lse = true;
  return gen::generate(spec);
}

TEST(NoAlloc, SteadyStatePlanRunWithWorkspaceAllocatesNothing) {
  const gen::Batch b = batch();
  Outputs o = make_outputs(b);
  Plan plan;
  ASSERT_TRUE(make_plan(b.inputs(), b.spec.options, &plan, {}, Backend::kCpu).ok());
  for (int threads : {1, 2}) {
    RunConfig config{Backend::kCpu, threads};
    // Warm-up: OpenMP starts its threads, Highway picks its target.
    ASSERT_TRUE(run(plan, b.inputs(), o.views, config).ok());
    const int64_t before = allocations_in([&] { ASSERT_TRUE(run(plan, b.inputs(), o.views, config).ok()); });
    const int64_t one_shot = allocations_in(
        [&] { ASSERT_TRUE(attention(b.inputs(), b.spec.options, o.views, config).ok()); });
    std::vector<char> workspace(static_cast<size_t>(workspace_bytes(plan, config)));
    config.workspace = workspace.data();
    config.workspace_size = static_cast<int64_t>(workspace.size());
    ASSERT_TRUE(run(plan, b.inputs(), o.views, config).ok());
    const int64_t after = allocations_in([&] { ASSERT_TRUE(run(plan, b.inputs(), o.views, config).ok()); });
    std::cout << "threads " << threads << ": heap allocations per call: attention() " << one_shot
              << ", run(plan) " << before << ", run(plan) with workspace " << after << "\n";
    EXPECT_GT(before, 0);
    EXPECT_EQ(after, 0);
  }
}

TEST(NoAlloc, CPlanRunWithWorkspaceAllocatesNothing) {
  const gen::Batch b = batch();
  Outputs o = make_outputs(b);
  const rpa_attention_inputs in = to_c(b.inputs());
  const rpa_attention_outputs out = to_c(o.views);
  const rpa_layer_inputs layer = to_c_layer(b.inputs());
  rpa_options options{};
  options.backend = RPA_BACKEND_CPU;
  options.threads = 2;
  rpa_plan* plan = nullptr;
  ASSERT_EQ(rpa_plan_create(&in, &options, &plan), RPA_OK);
  int64_t bytes = 0;
  ASSERT_EQ(rpa_plan_workspace_bytes(plan, &bytes), RPA_OK);
  std::vector<char> workspace(static_cast<size_t>(bytes));
  ASSERT_EQ(rpa_plan_run_with_workspace(plan, &layer, &out, workspace.data(), bytes), RPA_OK);
  const int64_t after = allocations_in(
      [&] { ASSERT_EQ(rpa_plan_run_with_workspace(plan, &layer, &out, workspace.data(), bytes), RPA_OK); });
  EXPECT_EQ(after, 0);
  rpa_plan_destroy(plan);
}

}  // namespace
}  // namespace rpa
