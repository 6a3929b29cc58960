// Fuzz target: contract validation, planning and the host backends over
// arbitrary shapes, strides, dtypes, metadata and options decoded from the
// bytes (docs/contract.md §1-§3). Every call runs on the reference and on the
// cpu backend, and (when valid) as a plan run with caller-owned workspace.
// Property (docs/robustness.md): either both refuse with a message and leave
// every byte of out and lse as it was, or both succeed, agree within the
// contract's tolerance on live rows and write nothing else; the plan run is
// bitwise the one-shot cpu result; a workspace one byte short is refused.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "compare/compare.h"
#include "fuzz_tensor.h"
#include "rpa/attention.h"
#include "rpa/plan.h"

namespace {

using rpa::DType;
using rpa::TensorView;

constexpr uint8_t kSentinel = 0xA5;

// The most memory one tensor's buffer may take. Extents of up to 4096 each
// with padded strides can reach gigabytes (the long run's one finding: a
// 2.4 GB K cache from the harness itself, past libFuzzer's 4 GB limit).
constexpr int64_t kMaxTensorBytes = int64_t{64} << 20;

// Picks one of `values`, or rarely any int32 at all: the small picks make
// valid calls likely, the wild ones test the checks at their edges.
template <size_t N>
int64_t pick(FuzzedDataProvider& in, const int64_t (&values)[N]) {
  const uint8_t k = in.ConsumeIntegral<uint8_t>();
  if (k == 255) return in.ConsumeIntegral<int32_t>();
  return values[k % N];
}

// A tensor and the bytes it views. Strides are dense plus padding, or rarely
// not positive (which the checks must refuse before reading anything); the
// buffer holds every element the strides reach.
struct Tensor {
  TensorView view;
  std::vector<uint8_t> bytes;
  bool too_large = false;  // its strides reach past kMaxTensorBytes: not backed

  bool valid_extents() const {
    for (int d = 0; d < view.rank; ++d) {
      if (view.shape[d] < 0 || view.shape[d] > 4096) return false;
    }
    return true;
  }
};

Tensor make_tensor(FuzzedDataProvider& in, DType dtype, std::initializer_list<int64_t> shape,
                   bool padded_strides) {
  Tensor t;
  t.view.dtype = dtype;
  t.view.rank = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t e : shape) t.view.shape[i++] = e;
  int64_t stride = 1;
  for (int d = t.view.rank - 1; d >= 0; --d) {
    int64_t pad = 0;
    if (padded_strides && d < t.view.rank - 1) pad = in.ConsumeIntegralInRange<int64_t>(0, 3);
    t.view.strides[d] = stride + pad;
    stride = t.view.strides[d] * std::clamp<int64_t>(t.view.shape[d], 1, 4096);
  }
  if (padded_strides && in.ConsumeIntegralInRange<int>(0, 31) == 0) {
    t.view.strides[in.ConsumeIntegralInRange<int>(0, t.view.rank - 1)] =
        in.ConsumeIntegralInRange<int64_t>(-2, 0);
  }
  int64_t elements = 1;
  if (t.valid_extents()) {
    for (int d = 0; d < t.view.rank; ++d) {
      if (t.view.shape[d] == 0) elements = 0;
      if (elements > 0) elements += (t.view.shape[d] - 1) * std::max<int64_t>(t.view.strides[d], 0);
    }
  }
  const int64_t bytes = std::max<int64_t>(elements, 1) * rpa::dtype_size(dtype);
  t.too_large = bytes > kMaxTensorBytes;
  t.bytes.assign(t.too_large ? 1 : static_cast<size_t>(bytes), 0);
  t.view.data = t.bytes.data();
  return t;
}

// Deterministic values from a seed in the bytes: the fuzzer steers shapes and
// metadata, not millions of floats.
void fill_values(Tensor& t, uint32_t seed, float lo, float hi) {
  const int64_t size = rpa::dtype_size(t.view.dtype);
  const int64_t n = static_cast<int64_t>(t.bytes.size()) / size;
  for (int64_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    const float u = lo + (hi - lo) * static_cast<float>(seed >> 8) / 16777216.0f;
    if (t.view.dtype == DType::kF8E4M3) {
      uint8_t code = static_cast<uint8_t>(seed >> 24);
      if ((code & 0x7f) == 0x7f) code ^= 1;  // NaN codes only where poisoned
      t.bytes[i] = code;
    } else {
      rpa::store_from_f32(t.bytes.data(), t.view.dtype, i, u);
    }
  }
}

// Whether bytes [begin, end) of t all hold the sentinel. One memcmp per
// stretch against a sentinel block: a byte loop was the target's hottest code.
bool untouched(const Tensor& t, size_t begin, size_t end) {
  static const std::vector<uint8_t> sentinels(4096, kSentinel);
  for (size_t at = begin; at < end; at += sentinels.size()) {
    const size_t n = std::min(end - at, sentinels.size());
    if (std::memcmp(t.bytes.data() + at, sentinels.data(), n) != 0) return false;
  }
  return true;
}

bool untouched(const Tensor& t) { return untouched(t, 0, t.bytes.size()); }

[[noreturn]] void fail(const char* what) { rpa::fuzz::fail("fuzz_attention", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const DType qt = std::array{DType::kF32, DType::kBF16, DType::kF16}[in.ConsumeIntegralInRange(0, 2)];
  const bool fp8 = in.ConsumeBool();
  const DType kvt = fp8 ? DType::kF8E4M3 : qt;
  const DType outt = in.ConsumeBool() ? DType::kF32 : qt;
  const int64_t dim = pick(in, {64, 64, 64, 80, 128, 256, 72, 0});
  const int64_t kv_heads = pick(in, {1, 1, 2, 3, 0});
  const int64_t group = pick(in, {1, 2, 4, 3, 8, 0});
  const int64_t tokens = pick(in, {0, 1, 2, 3, 5, 8, 12, 17});
  const int64_t page = pick(in, {1, 2, 4, 8, 16, 3});
  const int64_t pages = pick(in, {0, 1, 2, 3, 4, 6});
  const int64_t batch = pick(in, {0, 1, 2, 3, 4, 5});
  const int64_t per_seq = pick(in, {0, 1, 2, 3, 4, 6});
  // Rarely, an extent that disagrees with the others.
  const auto off = [&] { return in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegralInRange(-1, 1) : 0; };
  const bool padded = in.ConsumeBool();

  Tensor q = make_tensor(in, qt, {tokens, kv_heads, group, dim}, padded);
  Tensor k = make_tensor(in, kvt, {pages, page, kv_heads + off(), dim}, padded);
  Tensor v = make_tensor(in, kvt, {pages, page + off(), kv_heads, dim + off()}, padded);
  Tensor bt = make_tensor(in, DType::kI32, {batch + off(), per_seq}, padded);
  Tensor sl = make_tensor(in, DType::kI32, {batch + off()}, false);
  Tensor qsl = make_tensor(in, DType::kI32, {batch + 1 + off()}, false);
  // Extents past 4096, or buffers past kMaxTensorBytes, could be valid calls
  // over more memory than the harness backs: skipped. Negative extents stay
  // (they must be refused).
  for (const Tensor* t : {&q, &k, &v, &bt, &sl, &qsl}) {
    if (t->too_large) return 0;
    for (int d = 0; d < t->view.rank; ++d) {
      if (t->view.shape[d] > 4096) return 0;
    }
  }
  if (!q.valid_extents() || !k.valid_extents() || !bt.valid_extents()) return 0;

  // Metadata: mostly plausible (lengths in range, starts non-decreasing,
  // pages in range or -1), sometimes anything.
  const int64_t max_keys = per_seq * page;
  for (int64_t s = 0; s < sl.view.shape[0] && sl.valid_extents(); ++s) {
    sl.view.as<int32_t>()[s] = in.ConsumeIntegralInRange(0, 7) == 0
                                   ? in.ConsumeIntegral<int32_t>()
                                   : static_cast<int32_t>(in.ConsumeIntegralInRange<int64_t>(-1, max_keys + 1));
  }
  int32_t start = in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegralInRange(-2, 2) : 0;
  for (int64_t s = 0; s < qsl.view.shape[0] && qsl.valid_extents(); ++s) {
    qsl.view.as<int32_t>()[s] = start;
    start += in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegral<int8_t>()
                                                   : in.ConsumeIntegralInRange(0, 4);
  }
  const bool bt_writable = bt.valid_extents() && bt.view.strides[0] > 0 && bt.view.strides[1] > 0;
  for (int64_t r = 0; r < bt.view.shape[0] && bt_writable; ++r) {
    for (int64_t c = 0; c < bt.view.shape[1]; ++c) {
      bt.view.as<int32_t>()[r * bt.view.strides[0] + c * bt.view.strides[1]] =
          in.ConsumeIntegralInRange(0, 15) == 0
              ? in.ConsumeIntegral<int32_t>()
              : static_cast<int32_t>(in.ConsumeIntegralInRange<int64_t>(-1, std::max<int64_t>(pages - 1, 0)));
    }
  }

  rpa::AttentionOptions options;
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float kInf = std::numeric_limits<float>::infinity();
  // Logits stay below ~30 in magnitude: the contract's f32 tolerance (2e-5
  // of max |out|) is about f32 rounding of moderate logits; at |logit| ~ 300
  // (scale 3, values in [-2, 2], head_dim 256) rounding the logit alone costs
  // that much (the first long run "found" it: docs/robustness.md).
  options.scale = std::array{0.0f, 0.0f, 0.125f, -0.5f, 1.0f, kNaN, kInf}[in.ConsumeIntegralInRange(0, 6)];
  options.sliding_window = static_cast<int32_t>(pick(in, {0, 0, 0, 1, 2, 3, 5, -1}));
  options.logit_soft_cap = std::array{0.0f, 0.0f, 5.0f, 0.5f, -1.0f, kNaN, kInf}[in.ConsumeIntegralInRange(0, 6)];

  const uint32_t seed = in.ConsumeIntegral<uint32_t>();
  fill_values(q, seed, -1.0f, 1.0f);
  fill_values(k, seed ^ 0x1234567u, -1.0f, 1.0f);
  fill_values(v, seed ^ 0x7654321u, -1.0f, 1.0f);

  Tensor sinks, k_scale, v_scale, q_alias;
  rpa::AttentionInputs inputs{q.view, k.view, v.view, bt.view, sl.view, qsl.view, {}, {}, {}};
  if (in.ConsumeIntegralInRange(0, 3) == 0) {
    sinks = make_tensor(in, DType::kF32, {kv_heads * group + off()}, false);
    fill_values(sinks, seed + 1, -3.0f, 3.0f);
    inputs.sinks = sinks.view;
  }
  // Scales come with fp8 caches (rarely without, or next to others: refused).
  if (fp8 != (in.ConsumeIntegralInRange(0, 15) == 0)) {
    const int64_t n = in.ConsumeBool() ? 1 : kv_heads + off();
    k_scale = make_tensor(in, DType::kF32, {n}, false);
    v_scale = make_tensor(in, DType::kF32, {n}, false);
    const float bad = std::array{0.0f, -1.0f, kNaN, kInf}[in.ConsumeIntegralInRange(0, 3)];
    fill_values(k_scale, seed + 2, 0.01f, 0.05f);
    fill_values(v_scale, seed + 3, 0.01f, 0.05f);
    if (in.ConsumeIntegralInRange(0, 15) == 0 && k_scale.valid_extents() && n > 0) k_scale.view.as<float>()[0] = bad;
    inputs.k_scale = k_scale.view;
    inputs.v_scale = v_scale.view;
  }

  // Outputs: out like q (own strides), lse optional; every byte a sentinel.
  const bool with_lse = in.ConsumeBool();
  const bool out_padded = in.ConsumeBool();
  const bool alias_q = in.ConsumeIntegralInRange(0, 31) == 0;
  const int threads = in.ConsumeIntegralInRange(1, 2);
  const auto make_outputs = [&](Tensor* out, Tensor* lse) {
    FuzzedDataProvider fixed(data, 0);  // the same strides for every output
    *out = make_tensor(fixed, outt, {tokens, kv_heads, group, dim}, false);
    if (out_padded) {  // rows padded apart, the padding must stay untouched too
      out->view.strides[0] += 3;
      out->bytes.resize(out->bytes.size() + 3 * static_cast<size_t>(std::max<int64_t>(tokens, 1)) *
                                                 static_cast<size_t>(rpa::dtype_size(outt)));
      out->view.data = out->bytes.data();
    }
    std::fill(out->bytes.begin(), out->bytes.end(), kSentinel);
    if (with_lse) {
      *lse = make_tensor(fixed, DType::kF32, {tokens, kv_heads, group}, false);
      std::fill(lse->bytes.begin(), lse->bytes.end(), kSentinel);
    }
  };
  Tensor ref_out, ref_lse, cpu_out, cpu_lse;
  make_outputs(&ref_out, &ref_lse);
  make_outputs(&cpu_out, &cpu_lse);
  if (ref_out.too_large || ref_lse.too_large) return 0;  // (f32 out of a large bf16 q)
  rpa::AttentionOutputs ref_outputs{ref_out.view, with_lse ? ref_lse.view : TensorView{}};
  rpa::AttentionOutputs cpu_outputs{cpu_out.view, with_lse ? cpu_lse.view : TensorView{}};
  if (alias_q) ref_outputs.out.data = cpu_outputs.out.data = q.view.data;  // overlaps an input

  const rpa::Status ref =
      rpa::attention(inputs, options, ref_outputs, {.backend = rpa::Backend::kReference, .threads = 1});
  const rpa::Status cpu =
      rpa::attention(inputs, options, cpu_outputs, {.backend = rpa::Backend::kCpu, .threads = threads});
  if (!ref.ok() || !cpu.ok()) {
    if (ref.ok() && cpu.code() != rpa::StatusCode::kUnsupported) fail("cpu refused what the reference ran");
    if (!ref.ok() && cpu.ok()) fail("cpu ran what the reference refused");
    if (ref.message().empty() || cpu.message().empty()) fail("an error without a message");
    if (!ref.ok() && (!untouched(ref_out) || (with_lse && !untouched(ref_lse)))) {
      fail("the reference wrote an output in a failed call");
    }
    if (!cpu.ok() && (!untouched(cpu_out) || (with_lse && !untouched(cpu_lse)))) {
      fail("cpu wrote an output in a failed call");
    }
    return 0;
  }
  // Empty tensors share no byte, so only a non-empty out over q must be refused.
  if (alias_q && ref_out.view.numel() > 0) {
    std::fprintf(stderr, "out shape [%ld, %ld, %ld, %ld], strides [%ld, %ld, %ld], dtype %d; q dtype %d\n",
                 long(tokens), long(kv_heads), long(group), long(dim), long(ref_out.view.strides[0]),
                 long(ref_out.view.strides[1]), long(ref_out.view.strides[2]), int(outt), int(qt));
    fail("out overlapping q was accepted");
  }

  // Rows of active slots are written, nothing else (padding between rows too).
  const int32_t* seq = sl.view.as<int32_t>();
  const int32_t* starts = qsl.view.as<int32_t>();
  const int64_t capacity = bt.view.shape[0];
  std::vector<uint8_t> live(static_cast<size_t>(tokens), 0);
  for (int64_t s = 0; s < capacity; ++s) {
    if (seq[s] <= 0) continue;
    for (int32_t t = starts[s]; t < starts[s + 1]; ++t) live[t] = 1;
  }
  // Row r's bytes start at r * strides[0] elements; its first
  // kv_heads * group * dim elements are out's, the rest padding.
  const size_t esize = static_cast<size_t>(rpa::dtype_size(outt));
  for (const Tensor* out : {&ref_out, &cpu_out}) {
    const size_t row_bytes = static_cast<size_t>(out->view.strides[0]) * esize;
    const size_t out_bytes = static_cast<size_t>(kv_heads * group * dim) * esize;
    size_t at = 0;
    for (int64_t row = 0; row < tokens; ++row, at += row_bytes) {
      const size_t written_end = live[row] ? at + out_bytes : at;
      if (!untouched(*out, written_end, std::min(at + row_bytes, out->bytes.size()))) {
        fail("a byte outside the live rows was written");
      }
    }
    if (at < out->bytes.size() && !untouched(*out, at, out->bytes.size())) {
      fail("a byte outside the live rows was written");
    }
  }
  const rpa::Comparison c = rpa::compare_outputs(cpu_out.view, ref_out.view, seq, starts, capacity);
  if (!c.within(rpa::tolerance_for(qt))) {
    std::fprintf(stderr,
                 "q %d kv %d out %d, dim %ld, kv_heads %ld, group %ld, tokens %ld, page %ld, "
                 "scale %g, window %d, soft cap %g, sinks %d: relative error %g (max |ref| %g)\n",
                 int(qt), int(kvt), int(outt), long(dim), long(kv_heads), long(group), long(tokens),
                 long(page), double(options.scale), int(options.sliding_window),
                 double(options.logit_soft_cap), int(inputs.sinks.present()), c.relative_error(),
                 c.max_abs_reference);
    fail("cpu out differs from the reference beyond tolerance");
  }
  if (with_lse) {
    double worst = 0.0, largest = 1.0;
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t i = 0; i < kv_heads * group; ++i) {
        const float* a = cpu_lse.view.as<float>() + t * kv_heads * group + i;
        const float* b = ref_lse.view.as<float>() + t * kv_heads * group + i;
        if (!live[t]) {
          const uint8_t dead[4] = {kSentinel, kSentinel, kSentinel, kSentinel};
          if (std::memcmp(a, dead, 4) != 0 || std::memcmp(b, dead, 4) != 0) fail("lse of a dead row was written");
          continue;
        }
        if (!std::isfinite(*a) || !std::isfinite(*b)) fail("lse of a live row is not finite");
        worst = std::max(worst, std::fabs(double{*a} - *b));
        largest = std::max(largest, std::fabs(double{*b}));
      }
    }
    if (worst > rpa::tolerance_for(qt) * largest) fail("cpu lse differs from the reference");
  }

  // The same call as a plan run with caller workspace: bitwise the one-shot
  // result, and refused (nothing written) with one byte less.
  rpa::Plan plan;
  if (!rpa::make_plan(inputs, options, &plan, {}, rpa::Backend::kCpu).ok()) fail("make_plan refused a valid call");
  rpa::RunConfig config{.backend = rpa::Backend::kCpu, .threads = threads};
  const int64_t bytes = rpa::workspace_bytes(plan, config);
  const size_t misalign = in.ConsumeIntegralInRange<size_t>(0, 63);
  // Not zeroed: rpa must not depend on the workspace's contents.
  std::unique_ptr<uint8_t[]> workspace(new uint8_t[static_cast<size_t>(bytes) + misalign]);
  Tensor plan_out, plan_lse;
  make_outputs(&plan_out, &plan_lse);
  rpa::AttentionOutputs plan_outputs{plan_out.view, with_lse ? plan_lse.view : TensorView{}};
  config.workspace = workspace.get() + misalign;
  if (bytes > 0) {
    config.workspace_size = bytes - 1;
    if (rpa::run(plan, inputs, plan_outputs, config).ok()) fail("a workspace one byte short was accepted");
    if (!untouched(plan_out)) fail("a run refused for its workspace wrote out");
  }
  config.workspace_size = bytes;
  if (!rpa::run(plan, inputs, plan_outputs, config).ok()) fail("a plan run with its workspace failed");
  if (plan_out.bytes != cpu_out.bytes || (with_lse && plan_lse.bytes != cpu_lse.bytes)) {
    fail("the plan run with caller workspace differs from the one-shot cpu call");
  }
  return 0;
}
