// fp8 e4m3 K/V caches with per-tensor and per-kv-head scales, on every
// backend. The reference's meaning of a stored byte (its e4m3 value times its
// head's scale) is pinned against the same batch dequantized by hand; the
// single-loop executor and the CPU backend (every compiled SIMD target, q in
// f32, bf16 and f16, decode and prefill, windows, soft cap, sinks, lse, many
// tiles and splits) are compared with the reference on generated batches
// whose dead K/V slots hold fp8 NaN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "compare/compare.h"
#include "core/problem.h"
#include "cpu/cpu_features.h"
#include "generate/batch.h"
#include "hwy/targets.h"
#include "owned_outputs.h"
#include "plan/planner.h"
#include "random_batches.h"
#include "single_loop/single_loop.h"

namespace rpa {
namespace {

Outputs run(const gen::Batch& batch, Backend backend) {
  Outputs o = make_outputs(batch);
  const Status s = attention(batch.inputs(), batch.spec.options, o.views, {backend, 2});
  EXPECT_TRUE(s.ok()) << s.message();
  return o;
}

Outputs run_single_loop_plan(const gen::Batch& batch, const PlanConfig& config) {
  Outputs o = make_outputs(batch);
  Problem problem;
  Plan plan;
  EXPECT_TRUE(describe(batch.inputs(), batch.spec.options, &o.views, &problem).ok());
  EXPECT_TRUE(build_plan(problem, config, &plan).ok());
  const Status s = run_single_loop(problem, plan, batch.inputs(), o.views);
  EXPECT_TRUE(s.ok()) << s.message();
  return o;
}

// The fast paths fold the scales into q and o in f32; against the reference in
// double that is f32 rounding plus one output rounding, as for 16-bit caches.
// Decode of bf16 q on AMX tiles widens the codes to bf16 exactly but rounds P
// to bf16, as for bf16 caches (docs/contract.md §5): 8e-3, as there.
void expect_close(const gen::Batch& batch, const Outputs& got, const Outputs& want) {
  const DType out = batch.spec.out_dtype;
  double bound = out == DType::kF32 ? 2e-5 : tolerance_for(out);
  if (batch.spec.dtype == DType::kBF16 && cpu::amx_enabled()) bound = std::max(bound, 8e-3);
  rpa::expect_close(batch, got, want, bound, 1e-4f);
}

// With power-of-two scales every dequantized value is exact in f32, so the
// reference on the fp8 batch and on its f32 dequantization compute the same
// doubles: bitwise equal outputs pin the meaning of bytes, scales and heads.
TEST(Fp8Attention, ReferenceMeansBytesTimesTheirHeadsScale) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    gen::BatchSpec spec = fp8_spec(seed);
    spec.dtype = spec.out_dtype = DType::kF32;
    gen::Batch batch = gen::generate(spec);
    for (std::vector<float>* scales : {&batch.k_scale, &batch.v_scale}) {
      for (size_t i = 0; i < scales->size(); ++i) (*scales)[i] = std::ldexp(1.0f, int(i) - 2);
    }
    gen::Batch dense = batch;
    dense.spec.kv_quant = gen::KvQuant::kNone;
    dense.k_scale.clear();
    dense.v_scale.clear();
    const int64_t heads = spec.num_kv_heads, dim = spec.head_dim;
    for (auto [fp8, scales, f32] : {std::tuple{&batch.k_cache, &batch.k_scale, &dense.k_cache},
                                    std::tuple{&batch.v_cache, &batch.v_scale, &dense.v_cache}}) {
      f32->resize(fp8->size() * sizeof(float));
      for (size_t i = 0; i < fp8->size(); ++i) {
        const int64_t h = static_cast<int64_t>(i) / dim % heads;
        const float value = fp8_e4m3_to_f32((*fp8)[i]) * (*scales)[scales->size() == 1 ? 0 : h];
        std::memcpy(f32->data() + i * sizeof(float), &value, sizeof(float));
      }
    }
    const Outputs got = run(batch, Backend::kReference);
    const Outputs want = run(dense, Backend::kReference);
    // Bytes, not values: the sentinel NaNs of unwritten rows must match too.
    EXPECT_EQ(got.out, want.out) << "seed " << seed;
    EXPECT_EQ(0, std::memcmp(got.lse.data(), want.lse.data(), got.lse.size() * sizeof(float)))
        << "seed " << seed;
  }
}

TEST(Fp8Attention, SingleLoopMatchesReference) {
  for (uint64_t seed = 10; seed < 22; ++seed) {
    const gen::Batch batch = gen::generate(fp8_spec(seed));
    const Outputs want = run(batch, Backend::kReference);
    expect_close(batch, run_single_loop_plan(batch, {}), want);
    expect_close(batch, run_single_loop_plan(batch, small_config(batch.spec.page_size, seed)),
                 want);
  }
}

TEST(Fp8Attention, CpuMatchesReference) {
  for (uint64_t seed = 30; seed < 60; ++seed) {
    const gen::Batch batch = gen::generate(fp8_spec(seed));
    const Outputs want = run(batch, Backend::kReference);
    expect_close(batch, run_cpu_plan(batch, {}, 2), want);
    expect_close(batch, run_cpu_plan(batch, small_config(batch.spec.page_size, seed), 2), want);
  }
}

TEST(Fp8Attention, CpuDecodeWithLongContexts) {
  for (uint64_t seed = 60; seed < 66; ++seed) {
    gen::BatchSpec spec = decode_only(fp8_spec(seed), 1500);
    const gen::Batch batch = gen::generate(spec);
    const Outputs want = run(batch, Backend::kReference);
    expect_close(batch, run_cpu_plan(batch, {}, 2), want);
    expect_close(batch, run_cpu_plan(batch, small_config(spec.page_size, seed), 2), want);
  }
}

// Decode of bf16 q on fp8 caches, which runs on AMX tiles where the CPU has
// them (widened to bf16 run by run): every head group the tiles take (2-8),
// head_dims whose 64-byte rows end in a 32-byte tail (96) or not, pages of
// fewer and more keys than a 16-key run, items split inside runs; against
// the reference, and bitwise the same on 1, 2 and 3 threads.
TEST(Fp8Attention, Bf16QDecodeHeadGroupsDimsAndPages) {
  for (uint64_t seed = 640; seed < 664; ++seed) {
    gen::BatchSpec spec = bf16_decode_head_groups(
        decode_only(fp8_spec(seed), 200 + static_cast<int32_t>(seed % 5) * 60), seed);
    spec.lse = true;
    const gen::Batch batch = gen::generate(spec);
    const Outputs want = run(batch, Backend::kReference);
    const Outputs one = run_cpu_plan(batch, {}, 1);
    expect_close(batch, one, want);
    expect_close(batch, run_cpu_plan(batch, small_config(spec.page_size, seed), 2), want);
    for (const int threads : {2, 3}) {
      const Outputs many = run_cpu_plan(batch, {}, threads);
      EXPECT_EQ(one.out, many.out) << "seed " << seed << ", threads " << threads;
      EXPECT_EQ(std::memcmp(one.lse.data(), many.lse.data(), one.lse.size() * sizeof(float)), 0)
          << "seed " << seed << ", threads " << threads;
    }
  }
}

#if defined(__x86_64__)
// A serving engine's threads may flush denormals to zero (XLA's CPU threads
// set FTZ and DAZ); the fp8 decode keeps its values far down the f32 range,
// so the cpu backend runs with IEEE denormals whatever the caller's setting,
// on the calling thread and on its OpenMP workers, and gives it back.
TEST(Fp8Attention, CpuIgnoresTheCallersFlushToZero) {
  constexpr unsigned kFtzDaz = 0x8040;
  for (uint64_t seed = 80; seed < 84; ++seed) {
    const gen::Batch batch = gen::generate(decode_only(fp8_spec(seed), 600));
    const Outputs want = run(batch, Backend::kReference);
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | kFtzDaz);
    Outputs one = run_cpu_plan(batch, {}, 1);
    Outputs two = run_cpu_plan(batch, {}, 2);
    const unsigned after = _mm_getcsr();
    _mm_setcsr(saved);
    EXPECT_EQ(after, saved | kFtzDaz) << "the caller's setting was not given back";
    expect_close(batch, one, want);
    expect_close(batch, two, want);
  }
}
#endif

TEST(Fp8Attention, CpuOnEveryCompiledTarget) {
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    for (uint64_t seed = 70; seed < 76; ++seed) {
      const gen::Batch batch = gen::generate(fp8_spec(seed));
      expect_close(batch, run_cpu_plan(batch, small_config(batch.spec.page_size, seed), 2),
                   run(batch, Backend::kReference));
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A NaN code in a live K or V row reaches the output of the decode row that
// sees it (the SIMD decode misreads NaN; the kernels scan for it), and only
// that row's: in the first and in the last key, at an element inside the
// vectors and in the tail that head_dim 80 leaves after 32-byte vectors.
TEST(Fp8Attention, LiveNanCodePropagatesToItsSlotOnly) {
  for (const int32_t dim : {80, 128}) {
    for (const bool in_k : {false, true}) {
      for (const int32_t key : {0, 39}) {
        for (const int32_t d : {5, dim - 3}) {
          gen::BatchSpec spec = fp8_spec(80);
          spec.head_dim = dim;
          spec.batch_capacity = 2;
          spec.slots = {{1, 40}, {1, 40}};
          spec.slot_positions = {0, 1};
          spec.shared_prefix_fraction = 0.0;
          gen::Batch batch = gen::generate(spec);
          const int64_t token_bytes = int64_t{spec.num_kv_heads} * dim;
          // Slot 0's page holding `key`, kv head 0, element d.
          const int64_t page = batch.block_table[key / spec.page_size];
          const int64_t at = (page * spec.page_size + key % spec.page_size) * token_bytes + d;
          (in_k ? batch.k_cache : batch.v_cache)[at] = 0xff;
          const int64_t row_elems = int64_t{spec.num_kv_heads} * spec.heads_per_kv * dim;
          for (Backend backend : {Backend::kReference, Backend::kCpu, Backend::kSingleLoop}) {
            const Outputs o = run(batch, backend);
            const TensorView& out = o.views.out;
            const std::string where = std::string(backend_name(backend)) + (in_k ? " K" : " V") +
                                      " dim " + std::to_string(dim) + " key " +
                                      std::to_string(key) + " d " + std::to_string(d);
            // A NaN score poisons every element of the row's heads on kv head
            // 0; a NaN value only element d.
            EXPECT_TRUE(std::isnan(load_as_f32(out.data, out.dtype, d))) << where;
            if (in_k) {
              EXPECT_TRUE(std::isnan(load_as_f32(out.data, out.dtype, 0))) << where;
            }
            EXPECT_TRUE(std::isfinite(load_as_f32(out.data, out.dtype, row_elems))) << where;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace rpa
