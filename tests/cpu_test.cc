// The CPU backend against the reference on generated batches (NaN-poisoned dead
// K/V, permuted and shared pages, inactive slots): every dtype, GQA ratio,
// head_dim and page size, windows, soft cap, sinks and lse, with the planner's
// sizes and with small ones that force many tiles, chunks and splits, on every
// SIMD target compiled in; hand-written edge cases; strided views; and
// bitwise determinism across thread counts and batch compositions.
#include "cpu/cpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compare/compare.h"
#include "core/problem.h"
#include "cpu/cpu_features.h"
#include "generate/batch.h"
#include "hwy/targets.h"
#include "owned_outputs.h"
#include "plan/planner.h"
#include "random_batches.h"

namespace rpa {
namespace {

// The CPU path differs from the reference only by f32 rounding and its exp;
// bf16/f16 outputs add one rounding of the output itself, so the bound is one
// output ulp at max |out| plus f32 noise: well inside docs/contract.md §5.
// bf16 prefill and decode on AMX tiles round P to bf16 for P V, as the CUDA
// tensor-core path does, and are held to CUDA's bound; Cpu.Bf16WithoutAmx
// holds the AVX-512 paths to the f32 bound on the same machines.
double tolerance(const gen::BatchSpec& spec) {
  if (spec.out_dtype == DType::kBF16) return 8e-3;
  if (spec.dtype == DType::kBF16 && spec.kv_quant == gen::KvQuant::kNone && cpu::amx_enabled()) {
    return 8e-3;
  }
  if (spec.out_dtype == DType::kF16) return 1e-3;
  return spec.dtype == DType::kF32 ? 2e-6 : 1e-5;
}

// `bound` > 0 replaces tolerance(batch.spec).
void expect_close(const gen::Batch& batch, const Outputs& got, const Outputs& want,
                  double bound = 0.0) {
  rpa::expect_close(batch, got, want, bound > 0.0 ? bound : tolerance(batch.spec), 2e-5f);
}

TEST(Cpu, MatchesReferenceWithPlannerSizes) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    expect_close(batch, run_cpu_plan(batch, {}, 2), run_reference_backend(batch));
  }
}

TEST(Cpu, MatchesReferenceWithManyTilesChunksAndSplits) {
  for (uint64_t seed = 100; seed < 130; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    expect_close(batch, run_cpu_plan(batch, small_config(batch.spec.page_size, seed), 2),
                 run_reference_backend(batch));
  }
}

TEST(Cpu, PublicEntryMatchesReference) {
  gen::BatchSpec spec = random_spec(7);
  spec.lse = true;
  const gen::Batch batch = gen::generate(spec);
  Outputs got = make_outputs(batch);
  const Status s = attention(batch.inputs(), spec.options, got.views, {Backend::kCpu, 2});
  ASSERT_TRUE(s.ok()) << s.message();
  expect_close(batch, got, run_reference_backend(batch));
}

TEST(Cpu, DecodeOnlyWithLongContexts) {
  for (uint64_t seed = 200; seed < 206; ++seed) {
    gen::BatchSpec spec = decode_only(random_spec(seed), 1500);
    const gen::Batch batch = gen::generate(spec);
    const Outputs want = run_reference_backend(batch);
    expect_close(batch, run_cpu_plan(batch, {}, 2), want);
    expect_close(batch, run_cpu_plan(batch, small_config(spec.page_size, seed), 3), want);
  }
}

// Decode rows of several kv heads whose short window leaves most of their
// items, and the first keys of a block, out of range: the key blocks walk past
// empty items, and partial blocks go key by key.
TEST(Cpu, DecodeWindowsSkipWholeItems) {
  for (uint64_t seed = 210; seed < 214; ++seed) {
    gen::BatchSpec spec = decode_only(random_spec(seed), 1200);
    spec.num_kv_heads = 3;
    spec.options.sliding_window = static_cast<int32_t>(20 + seed % 50);
    const gen::Batch batch = gen::generate(spec);
    const Outputs want = run_reference_backend(batch);
    expect_close(batch, run_cpu_plan(batch, {}, 2), want);
    expect_close(batch, run_cpu_plan(batch, small_config(spec.page_size, seed), 3), want);
  }
}

// Logits spread over a range of about a hundred: most probabilities are far
// below the block's maximum, down to where the decode softmax's exp clamps.
// The f32 rounding of a logit grows with its size (about 1e-5 at 100), so f32
// outputs are held to docs/contract.md §5's bound here rather than tolerance()'s.
TEST(Cpu, DecodeWithWideLogits) {
  for (uint64_t seed = 220; seed < 232; ++seed) {
    gen::BatchSpec spec = decode_only(random_spec(seed), 700);
    spec.value_range = 8.0f;
    const gen::Batch batch = gen::generate(spec);
    // (bf16 on AMX tiles rounds P: its own bound, larger, holds there.)
    const double bound = spec.out_dtype == DType::kF32 ? std::max(2e-5, tolerance(spec)) : 0.0;
    expect_close(batch, run_cpu_plan(batch, {}, 2), run_reference_backend(batch), bound);
  }
}

// bf16 decode in the shapes the AMX tiles meet (on AMX machines; elsewhere
// the FMA path): query-head groups that are not powers of two (the score
// columns are padded), every head_dim that is a multiple of 32, pages that a
// 16-key tile run reads in place (16, 64) or from a copy (8, 2), and rows
// split into items whose edges fall inside runs (small_config). Every
// compiled target runs it, so the FMA paths of AVX2 and scalar meet these
// head groups too.
TEST(Cpu, Bf16DecodeHeadGroupsDimsAndPages) {
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    for (uint64_t seed = 600; seed < 624; ++seed) {
      const gen::BatchSpec spec = bf16_decode_head_groups(
          decode_only(random_spec(seed), 200 + static_cast<int32_t>(seed % 5) * 60), seed);
      const gen::Batch batch = gen::generate(spec);
      const Outputs want = run_reference_backend(batch);
      expect_close(batch, run_cpu_plan(batch, {}, 1), want);
      expect_close(batch, run_cpu_plan(batch, small_config(spec.page_size, seed), 2), want);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Cpu, LongPrefillSpansSeveralTiles) {
  for (uint64_t seed = 300; seed < 304; ++seed) {
    gen::BatchSpec spec = random_spec(seed);
    spec.head_dim = 64;
    spec.num_kv_heads = 1;
    spec.batch_capacity = 3;
    // A fresh prompt and a chunk on context, both several tiles long.
    spec.slots = {{static_cast<int32_t>(250 + seed * 97 % 350), 0},
                  {static_cast<int32_t>(130 + seed % 40), 90}};
    const gen::Batch batch = gen::generate(spec);
    expect_close(batch, run_cpu_plan(batch, {}, 2), run_reference_backend(batch));
  }
}

// Sets RPA_CPU_AMX=0 (the AMX paths off) for its lifetime when `off`, and
// then restores what the variable was, even when an assertion returns early.
class AmxOff {
 public:
  explicit AmxOff(bool off = true) : off_(off) {
    if (!off_) return;
    if (const char* v = std::getenv("RPA_CPU_AMX")) before_ = v;
    setenv("RPA_CPU_AMX", "0", 1);
  }
  ~AmxOff() {
    if (!off_) return;
    if (before_) {
      setenv("RPA_CPU_AMX", before_->c_str(), 1);
    } else {
      unsetenv("RPA_CPU_AMX");
    }
  }
  AmxOff(const AmxOff&) = delete;
  AmxOff& operator=(const AmxOff&) = delete;

 private:
  bool off_;
  std::optional<std::string> before_;
};

// On AMX machines bf16 prefill runs on tiles; the AVX-512 path that every
// other AVX512_BF16 machine runs is checked here with AMX turned off.
TEST(Cpu, Bf16WithoutAmx) {
  if (!cpu::has_amx_bf16()) GTEST_SKIP() << "no AMX: the other tests run this path";
  const AmxOff amx_off;
  for (uint64_t seed = 500; seed < 512; ++seed) {
    gen::BatchSpec spec = random_spec(seed);
    spec.dtype = DType::kBF16;
    spec.out_dtype = seed % 2 == 0 ? DType::kF32 : DType::kBF16;
    const gen::Batch batch = gen::generate(spec);
    expect_close(batch, run_cpu_plan(batch, small_config(batch.spec.page_size, seed), 2),
                 run_reference_backend(batch));
  }
}

TEST(Cpu, EveryCompiledTarget) {
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    for (uint64_t seed = 400; seed < 406; ++seed) {
      const gen::Batch batch = gen::generate(random_spec(seed));
      expect_close(batch, run_cpu_plan(batch, small_config(batch.spec.page_size, seed), 2),
                   run_reference_backend(batch));
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A NaN in a live K or V row of a prompt reaches the rows that see its key
// and no row of another slot or kv head (nor, in K, a row of the prompt that
// does not see it), on every prefill path: AMX tiles
// and the vector kernels (bf16 here), the f32 kernels. A NaN score must
// survive the exponential, whose clamp and selects would otherwise turn it
// into a number.
TEST(Cpu, LiveNanInAPromptReachesTheRowsThatSeeIt) {
  for (const DType dtype : {DType::kBF16, DType::kF32}) {
    for (const bool amx : {true, false}) {
      if (!amx && dtype == DType::kF32) continue;
      const AmxOff amx_off(!amx);
      for (const bool in_k : {true, false}) {
        gen::BatchSpec spec;
        spec.dtype = spec.out_dtype = dtype;
        spec.heads_per_kv = 4;
        spec.num_kv_heads = 2;
        spec.head_dim = 64;
        spec.page_size = 16;
        spec.batch_capacity = 2;
        spec.slots = {{40, 0}, {1, 40}};  // a fresh prompt, a decode row
        spec.slot_positions = {0, 1};
        spec.shared_prefix_fraction = 0.0;
        gen::Batch batch = gen::generate(spec);
        const int64_t dim = spec.head_dim;
        constexpr int64_t kKey = 20, kD = 5;
        // Slot 0's key 20, kv head 0, element 5.
        const int64_t page = batch.block_table[kKey / spec.page_size];
        const int64_t token = page * spec.page_size + kKey % spec.page_size;
        store_from_f32((in_k ? batch.k_cache : batch.v_cache).data(), dtype,
                       token * spec.num_kv_heads * dim + kD,
                       std::numeric_limits<float>::quiet_NaN());
        const Outputs o = run_cpu_plan(batch, {}, 2);
        const TensorView& out = o.views.out;
        const int64_t row = int64_t{spec.num_kv_heads} * spec.heads_per_kv * dim;
        auto value = [&](int64_t token_row, int64_t head, int64_t d) {
          return load_as_f32(out.data, out.dtype, token_row * row + head * dim + d);
        };
        SCOPED_TRACE(std::string(dtype_name(dtype)) + (amx ? "" : " RPA_CPU_AMX=0") +
                     (in_k ? " K" : " V"));
        for (const int64_t r : {kKey, int64_t{39}}) {
          for (int64_t head = 0; head < spec.heads_per_kv; ++head) {
            // A NaN score poisons the whole row; a NaN value its element only.
            EXPECT_TRUE(std::isnan(value(r, head, kD))) << "row " << r << " head " << head;
            if (in_k) {
              EXPECT_TRUE(std::isnan(value(r, head, 0))) << "row " << r;
            }
            // The same row's heads on kv head 1.
            EXPECT_TRUE(std::isfinite(value(r, spec.heads_per_kv + head, kD))) << "row " << r;
          }
        }
        // Rows of the prompt that do not see the key: in an earlier m-block,
        // and in the same one. (A NaN value may reach them: their masked
        // probabilities are 0 and 0 * NaN is NaN; docs/contract.md §1.)
        if (in_k) {
          EXPECT_TRUE(std::isfinite(value(0, 0, kD)));
          EXPECT_TRUE(std::isfinite(value(kKey - 1, 0, kD)));
        }
        // The other slot's row.
        EXPECT_TRUE(std::isfinite(value(40, 0, kD)));
      }
    }
  }
}

// The three prefill paths: AMX tiles, bf16 vectors (RPA_CPU_AMX=0), f32.
constexpr std::array<std::pair<DType, bool>, 3> kPrefillPaths = {
    std::pair{DType::kBF16, true}, std::pair{DType::kBF16, false}, std::pair{DType::kF32, true}};

// One 48-row prompt after `context` keys (GQA 4, one kv head, head_dim 64,
// softmax scale `scale`) whose every query row scores key n about score(n):
// q's first element is 1 and K row n's is score(n) / scale; the generated
// rest of the rows adds a little noise.
template <typename ScoreFn>
gen::Batch scored_prompt(DType dtype, int32_t context, float scale, const ScoreFn& score) {
  gen::BatchSpec spec;
  spec.dtype = spec.out_dtype = dtype;
  spec.heads_per_kv = 4;
  spec.num_kv_heads = 1;
  spec.head_dim = 64;
  spec.page_size = 16;
  spec.batch_capacity = 1;
  spec.slots = {{48, context}};
  spec.slot_positions = {0};
  spec.lse = true;
  spec.options.scale = scale;
  gen::Batch batch = gen::generate(spec);
  const int64_t dim = spec.head_dim;
  for (int64_t t = 0; t < 48 * spec.heads_per_kv; ++t) {
    store_from_f32(batch.q.data(), dtype, t * dim, 1.0f);
  }
  for (int64_t n = 0; n < context + 48; ++n) {
    const int64_t page = batch.block_table[n / spec.page_size];
    const int64_t token = page * spec.page_size + n % spec.page_size;
    store_from_f32(batch.k_cache.data(), dtype, token * dim, score(n) / scale);
  }
  return batch;
}

// Scores that rise along the keys pass a lane's lazy reference m halfway
// through chunks, once the lane has a state: the one-pass softmax then rescales
// the probabilities it already wrote (BlockSoftmax). The rise of 0.12 per key
// passes the margin of 8 every ~67 keys, and a step of 100 at key 300 would
// overflow exp(s - m) against the old m; the result still matches the
// reference, on every prefill path (AMX, bf16 vectors, f32).
TEST(Cpu, ScoresRisingPastTheLazyMarginMatchTheReference) {
  for (const auto& [dtype, amx] : kPrefillPaths) {
    const AmxOff amx_off(!amx);
    // Keys 0-447 in chunks of 128.
    const gen::Batch batch = scored_prompt(dtype, 400, 0.125f, [](int64_t n) {
      return 0.12f * static_cast<float>(n) + (n >= 300 ? 100.0f : 0.0f);
    });
    SCOPED_TRACE(std::string(dtype_name(dtype)) + (amx ? "" : " RPA_CPU_AMX=0"));
    // Logits up to 154: f32's rounding of s * scale * log2 e alone costs
    // about |s| 2^-24 of each p (5e-5 here; 1.1e-5 with logits up to 54,
    // where the two-pass softmax missed by as much).
    const double bound = dtype == DType::kF32 ? 1e-4 : 0.0;
    expect_close(batch, run_cpu_plan(batch, {}, 2), run_reference_backend(batch), bound);
  }
}

// A negative softmax scale (the contract takes any finite one) makes the
// smallest raw score the largest scaled one. Here the scaled scores fall by
// 0.8 per key, 102 across the first 128-key chunk, so a max taken of the raw
// scores would overflow exp(s - m); every prefill path still matches the
// reference.
TEST(Cpu, NegativeScaleMatchesTheReference) {
  for (const auto& [dtype, amx] : kPrefillPaths) {
    const AmxOff amx_off(!amx);
    // Keys 0-159.
    const gen::Batch batch = scored_prompt(
        dtype, 112, -0.125f, [](int64_t n) { return -0.8f * static_cast<float>(n); });
    SCOPED_TRACE(std::string(dtype_name(dtype)) + (amx ? "" : " RPA_CPU_AMX=0"));
    // Logits down to -128: f32 rounding as in the rising-scores test.
    const double bound = dtype == DType::kF32 ? 1e-4 : 0.0;
    expect_close(batch, run_cpu_plan(batch, {}, 2), run_reference_backend(batch), bound);
  }
}

// Edge cases at tile, page and window boundaries, each with and without small
// plan sizes. The planner's tile is 256 / heads_per_kv = 64 rows here, and
// 512 / heads_per_kv = 128 for slots of 1024 rows or more.
TEST(Cpu, EdgeCases) {
  struct Case {
    std::vector<gen::SlotSpec> slots;
    int32_t window;
  };
  const std::vector<Case> cases = {
      {{{64, 0}, {65, 0}, {64, 17}, {65, 31}}, 0},  // q_len = tile and tile + 1
      {{{32, 0}, {33, 0}, {32, 17}, {33, 31}}, 0},  // half a tile, and one row more
      {{{16, 48}, {1, 63}, {1, 15}, {64, 0}}, 0},   // seq_len a multiple of the page
      {{{1, 0}, {2, 0}, {7, 0}}, 0},                // context 0, down to a single key
      {{{40, 0}, {1, 100}, {45, 30}}, 5},           // window < page; rows see disjoint ranges
      {{{70, 10}, {1, 40}}, 1},                     // each row sees only itself
      {{{33, 200}, {1, 300}}, 48},                  // window edge inside a page
      {{{1025, 0}, {1023, 9}, {1, 40}}, 0},         // tall tiles and a 1-row last one; short ones
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    gen::BatchSpec spec;
    spec.seed = 500 + i;
    spec.dtype = spec.out_dtype = DType::kF32;
    spec.heads_per_kv = 4;
    spec.page_size = 16;
    spec.batch_capacity = static_cast<int32_t>(cases[i].slots.size()) + 2;
    spec.slots = cases[i].slots;
    spec.options.sliding_window = cases[i].window;
    spec.sinks = i % 2 == 1;
    spec.lse = true;
    const gen::Batch batch = gen::generate(spec);
    SCOPED_TRACE(i);
    const Outputs want = run_reference_backend(batch);
    expect_close(batch, run_cpu_plan(batch, {}, 2), want);
    expect_close(batch, run_cpu_plan(batch, PlanConfig{5, 16, 32}, 2), want);
  }
}

// q, out and the caches with padded outer strides.
TEST(Cpu, StridedViews) {
  gen::BatchSpec spec = random_spec(11);
  spec.dtype = spec.out_dtype = DType::kBF16;
  spec.lse = false;
  const gen::Batch batch = gen::generate(spec);
  AttentionInputs in = batch.inputs();
  // Copies `view` into `buffer` with `pad` extra elements after each index of dim 0.
  auto pad_outer = [](const TensorView& view, int64_t pad, std::vector<uint8_t>* buffer) {
    TensorView padded = view;
    const int64_t inner = view.strides[0];
    const int64_t size = dtype_size(view.dtype);
    padded.strides[0] = inner + pad;
    buffer->assign(view.shape[0] * (inner + pad) * size, 0xff);
    for (int64_t i = 0; i < view.shape[0]; ++i) {
      std::memcpy(buffer->data() + i * (inner + pad) * size,
                  static_cast<const uint8_t*>(view.data) + i * inner * size, inner * size);
    }
    padded.data = buffer->data();
    return padded;
  };
  std::vector<uint8_t> q, k, v, out;
  in.q = pad_outer(in.q, 24, &q);
  in.k_cache = pad_outer(in.k_cache, 40, &k);
  in.v_cache = pad_outer(in.v_cache, 8, &v);
  Outputs got = make_outputs(batch);
  got.views.out = pad_outer(got.views.out, 16, &out);
  const Status s = attention(in, spec.options, got.views, {Backend::kCpu, 2});
  ASSERT_TRUE(s.ok()) << s.message();
  expect_close(batch, got, run_reference_backend(batch));
}

TEST(Cpu, BitwiseIdenticalForAnyThreadCount) {
  for (uint64_t seed = 600; seed < 606; ++seed) {
    gen::BatchSpec spec = random_spec(seed);
    spec.lse = true;
    spec.batch_capacity = 7;
    spec.num_active = 5;
    spec.max_context = 700;
    const gen::Batch batch = gen::generate(spec);
    for (const PlanConfig& config : {PlanConfig{}, small_config(spec.page_size, seed)}) {
      const Outputs one = run_cpu_plan(batch, config, 1);
      for (int threads : {2, 3}) {
        const Outputs many = run_cpu_plan(batch, config, threads);
        EXPECT_EQ(one.out, many.out) << "seed " << seed << ", threads " << threads;
        EXPECT_EQ(std::memcmp(one.lse.data(), many.lse.data(), one.lse.size() * sizeof(float)), 0)
            << "seed " << seed << ", threads " << threads;
      }
    }
  }
}

TEST(Cpu, SequenceAloneBitwiseEqualsSequenceInBatch) {
  gen::BatchSpec spec;
  spec.seed = 700;
  spec.batch_capacity = 8;
  spec.heads_per_kv = 4;
  spec.slots = {{1, 2500}, {37, 120}, {1, 50}, {150, 0}, {3, 700}};
  spec.slot_positions = {1, 3, 4, 6, 7};
  spec.sinks = true;
  const gen::Batch batch = gen::generate(spec);
  Outputs in_batch = make_outputs(batch);
  ASSERT_TRUE(attention(batch.inputs(), spec.options, in_batch.views, {Backend::kCpu, 3}).ok());
  for (int32_t s : spec.slot_positions) {
    expect_alone_equals_in_batch(batch, s, in_batch,
                                 [&](const AttentionInputs& in, const AttentionOutputs& out) {
                                   return attention(in, spec.options, out, {Backend::kCpu, 2});
                                 });
  }
}

TEST(Cpu, NothingActiveWritesNothing) {
  gen::BatchSpec spec;
  spec.batch_capacity = 4;
  spec.slots = {{0, 5}, {0, 40}};  // context but no query rows: inactive
  const gen::Batch batch = gen::generate(spec);
  Outputs got = make_outputs(batch);
  const std::vector<uint8_t> sentinel = got.out;
  ASSERT_TRUE(attention(batch.inputs(), spec.options, got.views, {Backend::kCpu, 2}).ok());
  EXPECT_EQ(got.out, sentinel);
}

}  // namespace
}  // namespace rpa
