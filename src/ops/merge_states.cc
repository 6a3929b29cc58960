// merge_states, built on the one shared state merge: a finished result
// (out, lse) is the state (m = lse, l = 1, o = out), so merging two of them and
// finalizing is exactly the split-KV merge every backend uses.
#include "rpa/merge_states.h"

#include <algorithm>
#include <vector>

#include "core/message.h"
#include "core/online_softmax.h"
#include "core/view_check.h"

namespace rpa {
namespace {

struct Named {
  const char* name;
  const TensorView* view;
  ByteSpan span;
};

Status check_shapes(const MergeInputs& in, const TensorView& out, const TensorView& lse) {
  const TensorView& ref = in.out_a;
  if (ref.rank < 2) {
    return Status::Invalid(cat("out_a.rank = ", ref.rank, " must be >= 2 ([rows..., head_dim])"));
  }
  for (auto [name, v] : {std::pair{"out_b", &in.out_b}, std::pair{"out", &out}}) {
    if (v->rank != ref.rank) {
      return Status::Invalid(cat(name, ".rank = ", v->rank, " must equal out_a.rank = ", ref.rank));
    }
    for (int d = 0; d < ref.rank; ++d) {
      if (v->shape[d] != ref.shape[d]) {
        return Status::Invalid(cat(name, ".shape[", d, "] = ", v->shape[d], " must equal out_a.shape[",
                                   d, "] = ", ref.shape[d]));
      }
    }
  }
  for (auto [name, v] : {std::pair{"lse_a", &in.lse_a}, std::pair{"lse_b", &in.lse_b}, std::pair{"lse", &lse}}) {
    if (v->rank != ref.rank - 1) {
      return Status::Invalid(cat(name, ".rank = ", v->rank, " must be out_a.rank - 1 = ", ref.rank - 1));
    }
    for (int d = 0; d < v->rank; ++d) {
      if (v->shape[d] != ref.shape[d]) {
        return Status::Invalid(cat(name, ".shape[", d, "] = ", v->shape[d], " must equal out_a.shape[",
                                   d, "] = ", ref.shape[d]));
      }
    }
    if (v->dtype != DType::kF32) return Status::Invalid(cat(name, ".dtype = ", v->dtype, " must be f32"));
  }
  if (ref.dtype == DType::kI32) return Status::Invalid(cat("out_a.dtype = ", ref.dtype, " must be f32, bf16 or f16"));
  if (in.out_b.dtype != ref.dtype) {
    return Status::Invalid(cat("out_b.dtype = ", in.out_b.dtype, " must equal out_a.dtype = ", ref.dtype));
  }
  if (out.dtype != ref.dtype && out.dtype != DType::kF32) {
    return Status::Invalid(cat("out.dtype = ", out.dtype, " must be out_a.dtype (", ref.dtype, ") or f32"));
  }
  return Status::Ok();
}

// Offset of row `r` (row-major over the leading dims) in a view of `lead` leading dims.
int64_t row_offset(const TensorView& v, int lead, int64_t r) {
  int64_t offset = 0;
  for (int d = lead - 1; d >= 0; --d) {
    offset += (r % v.shape[d]) * v.strides[d];
    r /= v.shape[d];
  }
  return offset;
}

}  // namespace

Status merge_states(const MergeInputs& in, const TensorView& out, const TensorView& lse) {
  RPA_RETURN_IF_ERROR(check_shapes(in, out, lse));
  const int rank = in.out_a.rank;
  Named views[] = {{"out_a", &in.out_a, {}}, {"lse_a", &in.lse_a, {}}, {"out_b", &in.out_b, {}},
                   {"lse_b", &in.lse_b, {}}, {"out", &out, {}},        {"lse", &lse, {}}};
  for (Named& n : views) {
    const int r = n.view->rank;
    RPA_RETURN_IF_ERROR(check_view(*n.view, ViewRule{n.name, r, r == rank ? "[rows..., head_dim]" : "[rows...]"}, &n.span));
  }
  RPA_RETURN_IF_ERROR(check_distinct_elements(out, "out"));
  RPA_RETURN_IF_ERROR(check_distinct_elements(lse, "lse"));
  // Outputs may be the first part itself (same data, same strides), nothing else.
  const auto same = [](const TensorView& x, const TensorView& y) {
    return x.data == y.data && x.strides == y.strides && x.dtype == y.dtype;
  };
  for (int o = 4; o < 6; ++o) {
    const Named& output = views[o];
    for (int i = 0; i < 4; ++i) {
      if (!output.span.overlaps(views[i].span)) continue;
      if (i == o - 4 && same(*output.view, *views[i].view)) continue;
      return Status::Invalid(cat(output.name, " overlaps ", views[i].name,
                                 " (only out = out_a and lse = lse_a in place are allowed)"));
    }
  }
  if (views[4].span.overlaps(views[5].span)) return Status::Invalid("out overlaps lse");

  const int64_t dim = in.out_a.shape[rank - 1];
  const int64_t rows = in.out_a.numel() / std::max<int64_t>(1, dim);
  std::vector<float> oa(dim), ob(dim);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t a_at = row_offset(in.out_a, rank - 1, r), b_at = row_offset(in.out_b, rank - 1, r);
    for (int64_t d = 0; d < dim; ++d) {
      oa[d] = load_as_f32(in.out_a.data, in.out_a.dtype, a_at + d);
      ob[d] = load_as_f32(in.out_b.data, in.out_b.dtype, b_at + d);
    }
    const float la = in.lse_a.as<float>()[row_offset(in.lse_a, rank - 1, r)];
    const float lb = in.lse_b.as<float>()[row_offset(in.lse_b, rank - 1, r)];
    RowState a{la, la == kNegInf ? 0.0f : 1.0f};
    if (la == kNegInf) std::fill(oa.begin(), oa.end(), 0.0f);
    merge_state(a, oa.data(), RowState{lb, lb == kNegInf ? 0.0f : 1.0f}, ob.data(), dim);
    const float merged_lse = finalize_state(a, oa.data(), dim, nullptr);
    const int64_t out_at = row_offset(out, rank - 1, r);
    for (int64_t d = 0; d < dim; ++d) store_from_f32(out.data, out.dtype, out_at + d, oa[d]);
    lse.as<float>()[row_offset(lse, rank - 1, r)] = merged_lse;
  }
  return Status::Ok();
}

}  // namespace rpa
