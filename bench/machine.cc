// How the machine limits are measured (machine.h). Each limit is the best of
// a few timed passes: a limit is what the machine can do, not what it usually
// does while other processes share it.
#include "bench/machine.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/machine_kernels.h"
#include "bench/timing.h"
#include "cpu/cpu_features.h"
#include "hwy/aligned_allocator.h"
#include "rpa/dtype.h"

namespace rpa::bench {
namespace {

// Far larger than any last-level cache (32 MiB on the machine of record), so
// every pass streams from DRAM.
constexpr size_t kReadBytes = size_t{1} << 30;
constexpr int kReadPasses = 3;
constexpr int64_t kFmaIters = 10'000'000;  // ~25 ms per thread at 2.5 GHz
constexpr size_t kBf16Elements = 2048;     // 4 KiB per operand: L1-resident
// One unit of the bf16 limit lasts ~1.5 ms per thread: 41 MFLOP widening at
// ~30 GFLOP/s (AVX2), 307 MFLOP of vdpbf16ps at ~200, 5.2 GFLOP of AMX tile
// products at ~3500; the limit runs 10 units.
constexpr int64_t kBf16WideningPasses = 10'000;
constexpr int64_t kBf16ChainIters = 200'000;
constexpr int64_t kBf16AmxIters = 80'000;
constexpr int64_t kBf16Units = 10;
constexpr int kTimedPasses = 3;
// One unit of each probe (probe_for runs as many as match the workload).
constexpr size_t kProbeReadBytes = size_t{1} << 28;  // ~9 ms at 30 GB/s, 8x the LLC
constexpr int64_t kProbeFmaIters = 1'000'000;        // ~2.5 ms per thread at 2.5 GHz
constexpr int64_t kMaxProbeUnits = 400;
constexpr int kSgemmPasses = 2;  // ~0.15 s each at 120 GFLOP/s

// Keeps every kernel's result alive, so no loop can be optimized away.
volatile float g_sink = 0.0f;

// n floats on `threads` threads, each touching (so that its pages are local
// to it) the static share of the array that read_all() has it read.
hwy::AlignedFreeUniquePtr<float[]> touched_array(size_t n, int threads) {
  hwy::AlignedFreeUniquePtr<float[]> data = hwy::AllocateAligned<float>(n);
#pragma omp parallel num_threads(threads)
  {
    const size_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    std::fill(data.get() + n * t / nt, data.get() + n * (t + 1) / nt, 1.0f);
  }
  return data;
}

void read_all(const float* data, size_t n, int threads) {
  float total = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    const size_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    total += sum_floats(data + n * t / nt, n * (t + 1) / nt - n * t / nt);
  }
  g_sink = g_sink + total;
}

double read_gbps(int threads) {
  const size_t n = kReadBytes / sizeof(float);
  const hwy::AlignedFreeUniquePtr<float[]> data = touched_array(n, threads);
  double best = 0.0;
  for (int pass = 0; pass < kReadPasses; ++pass) {
    const Stopwatch watch;
    read_all(data.get(), n, threads);
    best = std::max(best, static_cast<double>(kReadBytes) / watch.seconds() * 1e-9);
  }
  return best;
}

// Runs `kernel` on every thread at once and returns the best total rate in
// GFLOP/s over kTimedPasses.
// Runs `kernel` on every thread at once; returns the flops done.
template <typename Kernel>
double run_parallel(int threads, const Kernel& kernel) {
  double flops = 0.0;
  float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : flops, sink)
  {
    const KernelWork work = kernel();
    flops += work.flops;
    sink += work.sink;
  }
  g_sink = g_sink + sink;
  return flops;
}

// The best total rate of `kernel` on every thread at once over kTimedPasses,
// in GFLOP/s.
template <typename Kernel>
double parallel_gflops(int threads, const Kernel& kernel) {
  double best = 0.0;
  for (int pass = 0; pass < kTimedPasses; ++pass) {
    const Stopwatch watch;
    const double flops = run_parallel(threads, kernel);
    best = std::max(best, flops / watch.seconds() * 1e-9);
  }
  return best;
}

// The bf16 limit is the fastest way this CPU multiplies bf16: AMX tiles, else
// vdpbf16ps chains in registers (bf16_native.cc), else the widening dot
// product of L1-resident operands, which is what a kernel without either
// extension can do.
class Bf16Peak {
 public:
  Bf16Peak()
      : method_(cpu::has_amx_bf16()       ? "amx"
                : cpu::has_avx512_bf16() ? "vdpbf16ps"
                                         : "widening") {
    if (method_ != std::string("widening")) return;
    a_.resize(kBf16Elements);
    b_.resize(kBf16Elements);
    // Values that neither overflow nor vanish over the passes.
    for (size_t i = 0; i < kBf16Elements; ++i) {
      a_[i] = f32_to_bf16(1.0f + static_cast<float>(i % 7) * 0.125f);
      b_[i] = f32_to_bf16(0.5f - static_cast<float>(i % 5) * 0.0625f);
    }
  }
  const char* method() const { return method_; }
  KernelWork run(int64_t units) const {
    const std::string m = method_;
    if (m == "amx") return bf16_amx_tiles(units * kBf16AmxIters);
    if (m == "vdpbf16ps") return bf16_vdpbf16ps_chains(units * kBf16ChainIters);
    return bf16_widening_dot(a_.data(), b_.data(), kBf16Elements, units * kBf16WideningPasses);
  }

 private:
  const char* method_;
  std::vector<uint16_t> a_, b_;
};

double sgemm_gflops(int threads) {
  const int n = kSgemmSize;
  std::vector<float> a(size_t{1} * n * n, 0.5f), b(size_t{1} * n * n, 0.25f), c(size_t{1} * n * n);
  openblas_set_num_threads(threads);
  // A small product first starts BLAS's threads and touches its buffers.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n / 4, n / 4, n / 4, 1.0f, a.data(), n,
              b.data(), n, 0.0f, c.data(), n);
  double best = 0.0;
  for (int pass = 0; pass < kSgemmPasses; ++pass) {
    const Stopwatch watch;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) / watch.seconds() * 1e-9);
  }
  g_sink = g_sink + c[0];
  return best;
}

// `unit` repeated `times`: the probe's run.
LimitProbe repeated(std::string limit, double unit_work, int64_t times,
                    std::function<void()> unit) {
  return {std::move(limit), unit_work * static_cast<double>(times),
          [times, unit = std::move(unit)] {
            for (int64_t i = 0; i < times; ++i) unit();
          }};
}

// How many probe units of `unit_work` do about `amount` of the same work.
int64_t units_for(double amount, double unit_work) {
  return std::clamp<int64_t>(std::llround(amount / unit_work), 1, kMaxProbeUnits);
}

}  // namespace

MachineLimits measure_machine(int threads) {
  MachineLimits m;
  m.threads = threads > 0 ? threads : omp_get_max_threads();
  m.simd_target = simd_target_name();
  m.cpu = describe_cpu();
  m.read_bytes = static_cast<double>(kReadBytes);
  m.sgemm_gflops = sgemm_gflops(m.threads);
  m.read_gbps = read_gbps(m.threads);
  m.fma_gflops = parallel_gflops(m.threads, [] { return fma_chains(kFmaIters); });

  const Bf16Peak bf16;
  m.bf16_method = bf16.method();
  m.bf16_gflops = parallel_gflops(m.threads, [&] { return bf16.run(kBf16Units); });
  return m;
}

LimitProbe probe_for(const Workload& work, DType dtype, const MachineLimits& machine) {
  const int threads = machine.threads;
  const double balance = machine.peak_gflops(dtype) / machine.read_gbps;  // flops per byte
  if (work.flops < balance * work.useful_bytes) {
    const size_t n = kProbeReadBytes / sizeof(float);
    auto data = std::make_shared<hwy::AlignedFreeUniquePtr<float[]>>(touched_array(n, threads));
    const double unit = static_cast<double>(kProbeReadBytes);
    return repeated("dram", unit, units_for(work.useful_bytes, unit),
                    [data, n, threads] { read_all(data->get(), n, threads); });
  }
  if (machine.bf16_is_peak(dtype)) {
    auto bf16 = std::make_shared<Bf16Peak>();
    const auto dot = [bf16] { return bf16->run(1); };
    const double unit = run_parallel(threads, dot);
    return repeated("bf16", unit, units_for(work.flops, unit),
                    [threads, dot] { run_parallel(threads, dot); });
  }
  const auto chains = [] { return fma_chains(kProbeFmaIters); };
  const double unit = run_parallel(threads, chains);
  return repeated("fma", unit, units_for(work.flops, unit),
                  [threads, chains] { run_parallel(threads, chains); });
}

}  // namespace rpa::bench
