// Fuzz target: rpa::merge_states (include/rpa/merge_states.h) over ranks,
// shapes, strides, dtypes, in-place and overlapping outputs, and lse values
// that include -inf, +inf and NaN. Property: on error out and lse are byte
// for byte as they were; on success every row is the merge computed here in
// double (within the output dtype's rounding), and a part with lse = -inf
// contributes nothing and brings no NaN.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "fuzz_tensor.h"
#include "rpa/merge_states.h"

namespace {

using rpa::DType;
using rpa::TensorView;
using rpa::fuzz::Tensor;

Tensor make_tensor(FuzzedDataProvider& in, DType dtype, const std::array<int64_t, 4>& shape, int rank) {
  return rpa::fuzz::make_tensor(in, dtype, shape.data(), rank, false);
}

int64_t offset(const TensorView& v, int64_t row, int lead) {
  int64_t at = 0;
  for (int d = lead - 1; d >= 0; --d) {
    at += (row % v.shape[d]) * v.strides[d];
    row /= v.shape[d];
  }
  return at;
}

[[noreturn]] void fail(const char* what) { rpa::fuzz::fail("fuzz_merge_states", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  constexpr std::array kDTypes = {DType::kF32, DType::kBF16, DType::kF16, DType::kI32};
  const int rank = in.ConsumeIntegralInRange(1, 4);
  std::array<int64_t, 4> shape{};
  for (int64_t& e : shape) e = in.ConsumeIntegralInRange<int64_t>(0, 4);
  const DType dt = kDTypes[in.ConsumeIntegralInRange(0, 15) == 0 ? 3 : in.ConsumeIntegralInRange(0, 2)];
  const DType out_dt = in.ConsumeBool() ? DType::kF32 : (in.ConsumeIntegralInRange(0, 15) == 0 ? kDTypes[in.ConsumeIntegralInRange(0, 3)] : dt);
  const auto skew = [&](int r) {  // rarely a rank or extent that disagrees
    std::array<int64_t, 4> s = shape;
    if (in.ConsumeIntegralInRange(0, 15) == 0) s[in.ConsumeIntegralInRange(0, 3)] += 1;
    return std::pair{s, in.ConsumeIntegralInRange(0, 15) == 0 ? std::max(r - 1, 1) : r};
  };
  const auto [sa, ra] = std::pair{shape, rank};
  const auto [sb, rb] = skew(rank);
  const auto [sla, rla] = skew(rank - 1);
  const auto [slb, rlb] = skew(rank - 1);
  Tensor out_a = make_tensor(in, dt, sa, ra), out_b = make_tensor(in, dt, sb, rb);
  Tensor lse_a = make_tensor(in, DType::kF32, sla, rla), lse_b = make_tensor(in, DType::kF32, slb, rlb);
  const float kInf = std::numeric_limits<float>::infinity();
  const float kSpecial[] = {-kInf, -kInf, kInf, std::numeric_limits<float>::quiet_NaN(), 80.0f, -80.0f};
  for (Tensor* t : {&out_a, &out_b, &lse_a, &lse_b}) {
    const int64_t n = static_cast<int64_t>(t->bytes.size()) / rpa::dtype_size(t->view.dtype);
    for (int64_t i = 0; i < n; ++i) {
      float value = static_cast<float>(in.ConsumeIntegralInRange(-40, 40)) / 8.0f;
      if (t->view.dtype == DType::kF32 && t->view.rank < rank && in.ConsumeIntegralInRange(0, 7) == 0) {
        value = kSpecial[in.ConsumeIntegralInRange(0, 5)];
      }
      if (t->view.dtype != DType::kI32) rpa::store_from_f32(t->bytes.data(), t->view.dtype, i, value);
    }
  }
  // Outputs: fresh, or in place (out = out_a, lse = lse_a), or rarely
  // overlapping an input some other way (refused).
  const int placement = in.ConsumeIntegralInRange(0, 7);
  Tensor out = make_tensor(in, out_dt, sa, ra), lse = make_tensor(in, DType::kF32, sla, rla);
  TensorView out_view = out.view, lse_view = lse.view;
  if (placement == 0 && out_dt == dt) out_view = out_a.view, lse_view = lse_a.view;
  if (placement == 1) out_view.data = out_b.view.data;
  const std::vector<uint8_t> before[] = {out.bytes, lse.bytes, out_a.bytes, lse_a.bytes, out_b.bytes, lse_b.bytes};
  const std::vector<uint8_t> a_bytes = out_a.bytes, la_bytes = lse_a.bytes;

  const rpa::Status status = rpa::merge_states({out_a.view, lse_a.view, out_b.view, lse_b.view}, out_view, lse_view);
  if (!status.ok()) {
    if (status.message().empty()) fail("an error without a message");
    int i = 0;
    for (const Tensor* t : {&out, &lse, &out_a, &lse_a, &out_b, &lse_b}) {
      if (t->bytes != before[i++]) fail("a failed call wrote a tensor");
    }
    return 0;
  }
  if (placement == 1 && out_view.data == out_b.view.data && !out_b.bytes.empty() && rank >= 1 &&
      out_a.view.numel() > 0) {
    fail("out overlapping out_b was accepted");
  }
  // The oracle, in double from the inputs as they were.
  const int64_t dim = shape[rank - 1];
  const int64_t rows = dim > 0 ? out_a.view.numel() / dim : 0;
  const double tol = dt == DType::kF32 && out_dt == DType::kF32 ? 1e-5 : (dt == DType::kBF16 || out_dt == DType::kBF16 ? 1e-2 : 2e-3);
  for (int64_t r = 0; r < rows; ++r) {
    const double la = reinterpret_cast<const float*>(la_bytes.data())[offset(lse_a.view, r, rank - 1)];
    const double lb = lse_b.view.as<float>()[offset(lse_b.view, r, rank - 1)];
    const double got_lse = lse_view.as<float>()[offset(lse_view, r, rank - 1)];
    if (std::isnan(la) || std::isnan(lb) || la == kInf || lb == kInf) continue;  // garbage in
    const double m = std::max(la, lb);
    if (m == -kInf) {
      if (got_lse != -kInf) fail("two empty parts merged into a non-empty one");
      continue;
    }
    const double wa = std::exp(la - m), wb = std::exp(lb - m), sum = wa + wb;
    if (std::fabs(got_lse - (m + std::log(sum))) > 1e-5 * std::max(1.0, std::fabs(m))) fail("merged lse is wrong");
    for (int64_t d = 0; d < dim; ++d) {
      const double a = rpa::load_as_f32(a_bytes.data(), dt, offset(out_a.view, r, rank - 1) + d);
      const double b = rpa::load_as_f32(out_b.bytes.data(), dt, offset(out_b.view, r, rank - 1) + d);
      const double want = ((wa > 0 ? wa * a : 0.0) + (wb > 0 ? wb * b : 0.0)) / sum;
      const double got = rpa::load_as_f32(out_view.data, out_dt, offset(out_view, r, rank - 1) + d);
      if (!(std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want)))) fail("merged out is wrong");
    }
  }
  return 0;
}
