// The cuda backend against the reference on the generated batches of the CPU
// suite (random_batches.h): every dtype, fp8 caches, GQA ratio, head_dim and
// page size, windows, soft cap, sinks and lse, with the cuda planner's sizes
// and with small ones that force many tiles, chunks and splits; long decode
// rows; determinism; tensors in the wrong memory; runs on a caller's stream.
// Without a usable GPU each test is skipped with the reason printed, and the
// error a caller gets then is itself tested.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "compare/compare.h"
#include "core/problem.h"
#include "cuda/cuda.h"
#include "cuda/device_plan.h"
#include "cuda/launch.h"
#include "staging/cuda_staging.h"
#include "generate/batch.h"
#include "owned_outputs.h"
#include "plan/planner.h"
#include "random_batches.h"

namespace rpa {
namespace {

#define SKIP_WITHOUT_GPU()                                 \
  do {                                                     \
    const Status device = cuda_device_status();            \
    if (!device.ok()) GTEST_SKIP() << device.message();    \
  } while (0)

// f32 q runs in f32 throughout: summation order and expf differ from the
// CPU's, so 1e-5 (docs/contract.md §5 allows 2e-5). bf16/f16 prefill multiplies on
// tensor cores with P rounded to q's dtype (2^-9 / 2^-12 per weight), plus
// one rounding of a 16-bit output: within docs/contract.md §5's 2e-2 / 5e-3.
double tolerance(const gen::BatchSpec& spec) {
  if (spec.dtype == DType::kBF16) return 8e-3;
  if (spec.dtype == DType::kF16) return 2e-3;
  return 1e-5;
}

void expect_close(const gen::Batch& batch, const Outputs& got, const Outputs& want) {
  rpa::expect_close(batch, got, want, tolerance(batch.spec), 1e-4f);
}

// The public entry on device copies of the batch (kCuda, default stream).
Outputs run_cuda_backend(const gen::Batch& batch) {
  Outputs o = make_outputs(batch);
  const Status s = cuda::run_cuda_from_host(batch.inputs(), batch.spec.options, o.views,
                                            RunConfig{.backend = Backend::kCuda});
  EXPECT_TRUE(s.ok()) << s.message();
  return o;
}

// The backend on a plan built with `config`.
Outputs run_cuda_plan(const gen::Batch& batch, const PlanConfig& config) {
  Outputs o = make_outputs(batch);
  cuda::DeviceCopy copy;
  Status s = copy.upload(batch.inputs(), o.views);
  EXPECT_TRUE(s.ok()) << s.message();
  Problem problem;
  Plan plan;
  EXPECT_TRUE(describe(copy.inputs(), batch.spec.options, &copy.outputs(), &problem).ok());
  EXPECT_TRUE(build_plan(problem, config, &plan).ok());
  s = run_cuda(problem, plan, copy.inputs(), copy.outputs(), nullptr);
  EXPECT_TRUE(s.ok()) << s.message();
  s = copy.download(o.views);
  EXPECT_TRUE(s.ok()) << s.message();
  return o;
}

// A generated batch, its outputs (the sentinel) and device copies of both;
// `uploaded` says whether the copies were made.
struct OnDevice {
  explicit OnDevice(const gen::BatchSpec& spec)
      : batch(gen::generate(spec)), got(make_outputs(batch)) {
    uploaded = copy.upload(batch.inputs(), got.views);
  }
  gen::Batch batch;
  Outputs got;
  cuda::DeviceCopy copy;
  Status uploaded;
};

// The random spec with the head counts, page sizes and scales the CPU suite
// leaves out: heads_per_kv that are not a register block of the decode
// kernels (2, 3, 6) or exceed one (16: a second CTA row of the CUDA-core
// kernel; 20: of the tensor-core kernel too), page sizes 8 and 128, and a
// negative scale (the softmax then runs on scaled scores).
gen::BatchSpec odd_shape_spec(uint64_t seed) {
  gen::BatchSpec spec = random_spec(seed);
  spec.heads_per_kv = std::array<int32_t, 5>{2, 3, 6, 16, 20}[seed % 5];
  spec.page_size = std::array<int32_t, 2>{8, 128}[(seed / 5) % 2];
  if (seed % 6 == 5) spec.options.scale = -0.08f;
  return spec;
}

// Rows past the live ones (padding up to the compiled capacity) hold the
// sentinel still: nothing but the live rows is written.
void expect_padding_untouched(const gen::Batch& batch, const Outputs& got) {
  const std::vector<uint8_t> sentinel = make_outputs(batch).out;
  const int64_t row_bytes = int64_t{batch.spec.num_kv_heads} * batch.spec.heads_per_kv *
                            batch.spec.head_dim * dtype_size(batch.spec.out_dtype);
  const size_t live_bytes = static_cast<size_t>(batch.live_rows() * row_bytes);
  ASSERT_EQ(got.out.size(), sentinel.size());
  EXPECT_TRUE(std::equal(got.out.begin() + live_bytes, got.out.end(), sentinel.begin() + live_bytes))
      << "seed " << batch.spec.seed << ": a padding row was written";
}

// Host side, no GPU needed: the prefill chains go up as (first, end) item
// ranges, each chain once, costliest (rows x keys) first, so the tiles that
// read the most keys start first on the GPU.
TEST(CudaPlan, PrefillChainsAreUploadedCostliestFirst) {
  gen::BatchSpec spec;
  spec.slots = {{300, 0}, {1, 90}, {40, 500}};
  const gen::Batch batch = gen::generate(spec);
  Problem problem;
  Plan plan;
  ASSERT_TRUE(describe(batch.inputs(), spec.options, nullptr, &problem).ok());
  ASSERT_TRUE(build_plan(problem, PlanConfig{16, 64, 4096}, &plan).ok());
  const cuda::PackedPlan packed = cuda::pack_plan(problem, plan);
  ASSERT_EQ(packed.num_prefill_chains, static_cast<int32_t>(plan.prefill_chains.size()));
  ASSERT_GT(packed.num_prefill_chains, 8);
  const auto* ranges = reinterpret_cast<const int32_t*>(packed.image.data() + packed.prefill_chains);
  std::vector<int32_t> firsts;
  int64_t previous_cost = std::numeric_limits<int64_t>::max();
  for (int32_t c = 0; c < packed.num_prefill_chains; ++c) {
    const int32_t first = ranges[2 * c], end = ranges[2 * c + 1];
    ASSERT_LT(first, end);
    int64_t keys = 0;
    for (int32_t i = first; i < end; ++i) keys += plan.prefill_items[i].kv_end - plan.prefill_items[i].kv_begin;
    const int64_t cost = keys * plan.prefill_items[first].q_rows;
    EXPECT_LE(cost, previous_cost) << "chain " << c;
    previous_cost = cost;
    firsts.push_back(first);
  }
  std::vector<int32_t> want;
  for (const ChainRef& chain : plan.prefill_chains) want.push_back(chain.first_item);
  std::sort(firsts.begin(), firsts.end());
  EXPECT_EQ(firsts, want);
}

// Host side, no GPU needed: bf16/f16 decode at head_dim 128 takes the
// tensor-core kernel where its 104,448-byte rings fit (H100/H200: 227 KiB per
// block), the CUDA-core kernel where the GPU offers 99 KiB (sm_86, sm_89), and
// every decode the backend can run fits in 99 KiB.
TEST(CudaPlan, DecodeFitsGpusWith99KiBOfSharedMemoryPerBlock) {
  constexpr int kHopper = 227 * 1024, kAda = 99 * 1024;
  cuda::KernelArgs a;
  a.q_dtype = a.kv_dtype = DType::kBF16;
  a.heads_per_kv = 4;
  a.head_dim = 128;
  EXPECT_EQ(cuda::decode_kernel_smem_bytes(a, kHopper), 104448);
  EXPECT_EQ(cuda::decode_kernel_smem_bytes(a, kAda), 98304);
  const DType pairs[][2] = {{DType::kBF16, DType::kBF16}, {DType::kF16, DType::kF16},
                            {DType::kF32, DType::kF32}, {DType::kBF16, DType::kF8E4M3},
                            {DType::kF32, DType::kF8E4M3}};
  for (const auto& pair : pairs) {
    for (const int dim : {64, 80, 96, 128, 256}) {
      for (const int heads : {1, 3, 4, 8, 16}) {
        a.q_dtype = pair[0];
        a.kv_dtype = pair[1];
        a.head_dim = dim;
        a.heads_per_kv = heads;
        EXPECT_LE(cuda::decode_kernel_smem_bytes(a, kAda), kAda)
            << dtype_name(pair[0]) << " q, " << dtype_name(pair[1]) << " cache, head_dim " << dim
            << ", " << heads << " heads per kv head";
      }
    }
  }
}

TEST(Cuda, WithoutADeviceTheCallSaysWhyAndWritesNothing) {
  if (cuda_device_status().ok()) GTEST_SKIP() << "a CUDA device is present: the device tests run";
  const gen::Batch batch = gen::generate(random_spec(3));
  Outputs got = make_outputs(batch);
  const std::vector<uint8_t> sentinel = got.out;
  const Status s = attention(batch.inputs(), batch.spec.options, got.views,
                             RunConfig{.backend = Backend::kCuda});
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("cuda backend: no"), std::string::npos) << s.message();
  EXPECT_EQ(got.out, sentinel);
}

TEST(Cuda, MatchesReferenceWithItsPlannerSizes) {
  SKIP_WITHOUT_GPU();
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    expect_close(batch, run_cuda_backend(batch), run_reference_backend(batch));
  }
}

TEST(Cuda, MatchesReferenceWithManyTilesChunksAndSplits) {
  SKIP_WITHOUT_GPU();
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    expect_close(batch, run_cuda_plan(batch, small_config(batch.spec.page_size, seed)),
                 run_reference_backend(batch));
  }
}

TEST(Cuda, OddHeadCountsPageSizesAndSeveralRowBlocks) {
  SKIP_WITHOUT_GPU();
  for (uint64_t seed = 0; seed < 24; ++seed) {
    const gen::Batch batch = gen::generate(odd_shape_spec(seed));
    const Outputs want = run_reference_backend(batch);
    const Outputs got = run_cuda_backend(batch);
    expect_close(batch, got, want);
    expect_padding_untouched(batch, got);
    // 24-row tiles: up to 384 packed rows, several 64-row CTAs per tile.
    expect_close(batch, run_cuda_plan(batch, PlanConfig{24, batch.spec.page_size, 0}), want);
  }
}

TEST(Cuda, PaddingRowsAreNeverWritten) {
  SKIP_WITHOUT_GPU();
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    expect_padding_untouched(batch, run_cuda_backend(batch));
  }
}

TEST(Cuda, DecodeOnlyWithLongContexts) {
  SKIP_WITHOUT_GPU();
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const gen::Batch batch = gen::generate(decode_only(random_spec(seed), 5000));
    const Outputs want = run_reference_backend(batch);
    expect_close(batch, run_cuda_backend(batch), want);
    expect_close(batch, run_cuda_plan(batch, small_config(batch.spec.page_size, seed)), want);
  }
}

TEST(Cuda, Fp8CachesMatchReference) {
  SKIP_WITHOUT_GPU();
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const gen::Batch batch = gen::generate(fp8_spec(seed));
    expect_close(batch, run_cuda_backend(batch), run_reference_backend(batch));
    expect_close(batch, run_cuda_plan(batch, small_config(batch.spec.page_size, seed)),
                 run_reference_backend(batch));
  }
}

TEST(Cuda, BitwiseIdenticalRunToRun) {
  SKIP_WITHOUT_GPU();
  for (uint64_t seed = 0; seed < 6; ++seed) {
    const gen::Batch batch = gen::generate(random_spec(seed));
    EXPECT_EQ(run_cuda_backend(batch).out, run_cuda_backend(batch).out) << "seed " << seed;
  }
}

// A slot's rows computed alone (a batch of one) are bitwise those it gets in
// a batch with others: plans and kernels never depend on the rest of a batch.
TEST(Cuda, SequenceAloneBitwiseEqualsSequenceInBatch) {
  SKIP_WITHOUT_GPU();
  gen::BatchSpec spec;
  spec.seed = 700;
  spec.batch_capacity = 8;
  spec.heads_per_kv = 4;
  spec.dtype = spec.out_dtype = DType::kBF16;
  spec.slots = {{1, 2500}, {37, 120}, {1, 50}, {150, 0}, {3, 700}};
  spec.slot_positions = {1, 3, 4, 6, 7};
  spec.sinks = true;
  const gen::Batch batch = gen::generate(spec);
  const Outputs in_batch = run_cuda_backend(batch);
  for (int32_t s : spec.slot_positions) {
    expect_alone_equals_in_batch(batch, s, in_batch, [&](const AttentionInputs& in,
                                                         const AttentionOutputs& out) {
      return cuda::run_cuda_from_host(in, spec.options, out, RunConfig{.backend = Backend::kCuda});
    });
  }
}

TEST(Cuda, NothingActiveWritesNothing) {
  SKIP_WITHOUT_GPU();
  gen::BatchSpec spec;
  spec.batch_capacity = 4;
  spec.slots = {{0, 5}, {0, 40}};  // context but no query rows: inactive
  const gen::Batch batch = gen::generate(spec);
  const std::vector<uint8_t> sentinel = make_outputs(batch).out;
  EXPECT_EQ(run_cuda_backend(batch).out, sentinel);
}

TEST(Cuda, AutoPicksCudaForDeviceTensors) {
  SKIP_WITHOUT_GPU();
  auto&& [batch, got, copy, uploaded] = OnDevice(random_spec(8));
  ASSERT_TRUE(uploaded.ok()) << uploaded.message();
  EXPECT_TRUE(is_device_pointer(copy.inputs().q.data));
  EXPECT_FALSE(is_device_pointer(batch.inputs().q.data));
  const Status s = attention(copy.inputs(), batch.spec.options, copy.outputs(), RunConfig{});
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_TRUE(copy.download(got.views).ok());
  expect_close(batch, got, run_reference_backend(batch));
}

TEST(Cuda, RunsOnTheCallersStream) {
  SKIP_WITHOUT_GPU();
  const gen::Batch batch = gen::generate(random_spec(12));
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  Outputs got = make_outputs(batch);
  const Status s = cuda::run_cuda_from_host(
      batch.inputs(), batch.spec.options, got.views,
      RunConfig{.backend = Backend::kCuda, .cuda_stream = stream});
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  expect_close(batch, got, run_reference_backend(batch));
}

TEST(Cuda, RejectsTensorsInTheWrongMemoryAndWritesNothing) {
  SKIP_WITHOUT_GPU();
  auto&& [batch, got, copy, uploaded] = OnDevice(random_spec(5));
  ASSERT_TRUE(uploaded.ok()) << uploaded.message();
  const RunConfig config{.backend = Backend::kCuda};

  AttentionInputs host_q = copy.inputs();
  host_q.q = batch.inputs().q;
  Status s = attention(host_q, batch.spec.options, copy.outputs(), config);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("q.data is in host memory"), std::string::npos) << s.message();

  AttentionInputs device_lens = copy.inputs();
  device_lens.seq_lens.data = copy.inputs().q.data;  // any device address
  s = attention(device_lens, batch.spec.options, copy.outputs(), config);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("seq_lens.data is in device memory"), std::string::npos)
      << s.message();

  ASSERT_TRUE(copy.download(got.views).ok());
  EXPECT_EQ(got.out, make_outputs(batch).out);
}

// A host backend handed device tensors says so instead of reading them.
TEST(Cuda, HostBackendsRefuseDeviceTensorsAndWriteNothing) {
  SKIP_WITHOUT_GPU();
  auto&& [batch, got, copy, uploaded] = OnDevice(random_spec(6));
  ASSERT_TRUE(uploaded.ok()) << uploaded.message();
  for (const Backend backend : {Backend::kCpu, Backend::kSingleLoop, Backend::kReference}) {
    AttentionInputs device_k = batch.inputs();
    device_k.k_cache = copy.inputs().k_cache;
    Status s = attention(device_k, batch.spec.options, got.views, RunConfig{.backend = backend});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("k_cache.data is in GPU device memory; backend '" +
                               std::string(backend_name(backend)) + "'"),
              std::string::npos)
        << s.message();
    // The outputs on the device, the inputs on the host: out is named.
    s = attention(batch.inputs(), batch.spec.options, copy.outputs(), RunConfig{.backend = backend});
    EXPECT_NE(s.message().find("out.data is in GPU device memory"), std::string::npos)
        << s.message();
  }
  EXPECT_EQ(got.out, make_outputs(batch).out);
}

TEST(Cuda, RejectsMisalignedCacheRowsAndWritesNothing) {
  SKIP_WITHOUT_GPU();
  gen::BatchSpec spec = random_spec(1);
  spec.dtype = spec.out_dtype = DType::kBF16;
  auto&& [batch, got, copy, uploaded] = OnDevice(spec);
  ASSERT_TRUE(uploaded.ok()) << uploaded.message();
  AttentionInputs shifted = copy.inputs();
  // One bf16 element past a 256-byte aligned allocation: 2-byte aligned rows.
  shifted.k_cache.data = static_cast<uint16_t*>(shifted.k_cache.data) + 1;
  const Status s =
      attention(shifted, spec.options, copy.outputs(), RunConfig{.backend = Backend::kCuda});
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("k_cache.data must be 16-byte aligned"), std::string::npos)
      << s.message();
  ASSERT_TRUE(copy.download(got.views).ok());
  EXPECT_EQ(got.out, make_outputs(batch).out);
}

}  // namespace
}  // namespace rpa
