#include "call_frame.h"

#include <string>
#include <string_view>

#include "core/message.h"
#include "rpa_xla.h"

namespace rpa::xla_ffi {
namespace {

std::string xla_type_name(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::PRED:
      return "pred";
    case ffi::DataType::S8:
      return "s8";
    case ffi::DataType::S16:
      return "s16";
    case ffi::DataType::S32:
      return "s32";
    case ffi::DataType::S64:
      return "s64";
    case ffi::DataType::U8:
      return "u8";
    case ffi::DataType::U16:
      return "u16";
    case ffi::DataType::U32:
      return "u32";
    case ffi::DataType::U64:
      return "u64";
    case ffi::DataType::F16:
      return "f16";
    case ffi::DataType::F32:
      return "f32";
    case ffi::DataType::F64:
      return "f64";
    case ffi::DataType::BF16:
      return "bf16";
    case ffi::DataType::F8E5M2:
      return "f8e5m2";
    case ffi::DataType::F8E4M3FN:
      return "f8e4m3fn";
    default:
      return cat("XLA element type code ", static_cast<int>(t));
  }
}

Status dtype_of(ffi::DataType t, std::string_view name, DType* dtype) {
  switch (t) {
    case ffi::DataType::F32:
      *dtype = DType::kF32;
      return Status::Ok();
    case ffi::DataType::BF16:
      *dtype = DType::kBF16;
      return Status::Ok();
    case ffi::DataType::F16:
      *dtype = DType::kF16;
      return Status::Ok();
    case ffi::DataType::S32:
      *dtype = DType::kI32;
      return Status::Ok();
    // OCP e4m3 without infinities is XLA's f8E4M3FN, not f8E4M3.
    case ffi::DataType::F8E4M3FN:
      *dtype = DType::kF8E4M3;
      return Status::Ok();
    default:
      return Status::Invalid(cat(name, " has element type ", xla_type_name(t),
                                 "; rpa takes f32, bf16, f16, s32 (metadata) and f8e4m3fn ",
                                 "(K/V caches)"));
  }
}

// XLA hands custom calls dense row-major buffers (docs/xla.md asks producers
// for the default layouts), so the strides follow from the shape.
Status view_of(const ffi::AnyBuffer& buffer, std::string_view name, TensorView* view) {
  *view = TensorView{};
  RPA_RETURN_IF_ERROR(dtype_of(buffer.element_type(), name, &view->dtype));
  const auto dims = buffer.dimensions();
  if (dims.size() > static_cast<size_t>(kMaxRank)) {
    return Status::Invalid(
        cat(name, " has rank ", dims.size(), "; rpa tensors have rank at most ", kMaxRank));
  }
  view->rank = static_cast<int>(dims.size());
  view->data = buffer.untyped_data();
  int64_t stride = 1;
  for (int d = view->rank - 1; d >= 0; --d) {
    view->shape[d] = dims[d];
    view->strides[d] = stride;
    stride *= dims[d] > 0 ? dims[d] : 1;
  }
  return Status::Ok();
}

// K and V of JAX's combined cache, without a copy: both are views of kv_pages
// [P, S, 2H, D] with shape [P, S, H, D] and the head stride doubled; V starts
// one head (D elements) further on.
Status split_kv_pages(const TensorView& kv, TensorView* k, TensorView* v) {
  if (kv.rank != 4) {
    return Status::Invalid(cat("kv_pages has rank ", kv.rank,
                               "; it is [num_pages, page_size, 2 * num_kv_heads, head_dim]"));
  }
  if (kv.shape[2] % 2 != 0) {
    return Status::Invalid(cat("kv_pages has ", kv.shape[2], " combined heads (dimension 2); ",
                               "K and V alternate there, so the count must be even"));
  }
  *k = kv;
  k->shape[2] = kv.shape[2] / 2;
  k->strides[2] = 2 * kv.strides[2];
  *v = *k;
  v->data = static_cast<char*>(kv.data) + kv.strides[2] * dtype_size(kv.dtype);
  return Status::Ok();
}

class OperandReader {
 public:
  explicit OperandReader(const ffi::RemainingArgs& args) : args_(args) {}

  Status next(std::string_view name, TensorView* view) {
    const size_t index = next_++;
    ffi::ErrorOr<ffi::AnyBuffer> buffer = args_.get<ffi::AnyBuffer>(index);
    if (!buffer.has_value()) {
      return Status::Invalid(
          cat("operand ", index, " (", name, ") is not a buffer: ", buffer.error().message()));
    }
    return view_of(*buffer, name, view);
  }

 private:
  const ffi::RemainingArgs& args_;
  size_t next_ = 0;
};

const char* text(bool flag) { return flag ? "true" : "false"; }

std::string operand_list(const OperandLayout& layout) {
  std::string list = layout.combined_kv ? "q, kv_pages" : "q, k_cache, v_cache";
  list += ", block_table, seq_lens, query_start_len";
  if (layout.has_sinks) list += ", sinks";
  if (layout.has_kv_scales) list += ", k_scale, v_scale";
  return list;
}

Status read_operands(const ffi::RemainingArgs& args, const OperandLayout& layout,
                     AttentionInputs* in) {
  const size_t expected =
      (layout.combined_kv ? 5 : 6) + (layout.has_sinks ? 1 : 0) + (layout.has_kv_scales ? 2 : 0);
  if (args.size() != expected) {
    return Status::Invalid(cat(RPA_XLA_TARGET_NAME, " got ", args.size(), " operands; with ",
                               "combined_kv=", text(layout.combined_kv),
                               ", has_sinks=", text(layout.has_sinks),
                               ", has_kv_scales=", text(layout.has_kv_scales), " it takes ",
                               expected, ": ", operand_list(layout)));
  }
  OperandReader reader(args);
  RPA_RETURN_IF_ERROR(reader.next("q", &in->q));
  if (layout.combined_kv) {
    TensorView kv;
    RPA_RETURN_IF_ERROR(reader.next("kv_pages", &kv));
    RPA_RETURN_IF_ERROR(split_kv_pages(kv, &in->k_cache, &in->v_cache));
  } else {
    RPA_RETURN_IF_ERROR(reader.next("k_cache", &in->k_cache));
    RPA_RETURN_IF_ERROR(reader.next("v_cache", &in->v_cache));
  }
  RPA_RETURN_IF_ERROR(reader.next("block_table", &in->block_table));
  RPA_RETURN_IF_ERROR(reader.next("seq_lens", &in->seq_lens));
  RPA_RETURN_IF_ERROR(reader.next("query_start_len", &in->query_start_len));
  if (layout.has_sinks) RPA_RETURN_IF_ERROR(reader.next("sinks", &in->sinks));
  if (layout.has_kv_scales) {
    RPA_RETURN_IF_ERROR(reader.next("k_scale", &in->k_scale));
    RPA_RETURN_IF_ERROR(reader.next("v_scale", &in->v_scale));
  }
  return Status::Ok();
}

Status read_result(const ffi::RemainingRets& rets, size_t index, std::string_view name,
                   TensorView* view) {
  ffi::ErrorOr<ffi::Result<ffi::AnyBuffer>> buffer = rets.get<ffi::AnyBuffer>(index);
  if (!buffer.has_value()) {
    return Status::Invalid(
        cat("result ", index, " (", name, ") is not a buffer: ", buffer.error().message()));
  }
  return view_of(**buffer, name, view);
}

}  // namespace

Status read_call(const ffi::Dictionary& attrs, const ffi::RemainingArgs& args,
                 const ffi::RemainingRets& rets, Call* call) {
  RPA_RETURN_IF_ERROR(read_attributes(attrs, &call->options, &call->layout));
  RPA_RETURN_IF_ERROR(read_operands(args, call->layout, &call->inputs));
  if (rets.size() != 1 && rets.size() != 2) {
    return Status::Invalid(
        cat(RPA_XLA_TARGET_NAME, " has ", rets.size(), " results; it returns out, or out and lse"));
  }
  RPA_RETURN_IF_ERROR(read_result(rets, 0, "out", &call->outputs.out));
  if (rets.size() == 2) RPA_RETURN_IF_ERROR(read_result(rets, 1, "lse", &call->outputs.lse));
  return Status::Ok();
}

std::vector<RowRange> unwritten_rows(const AttentionInputs& inputs) {
  const TensorView& seq_lens = inputs.seq_lens;
  const TensorView& starts = inputs.query_start_len;
  auto seq_len = [&](int64_t s) { return seq_lens.as<int32_t>()[s * seq_lens.strides[0]]; };
  auto start = [&](int64_t s) { return starts.as<int32_t>()[s * starts.strides[0]]; };
  std::vector<RowRange> ranges;
  auto add = [&](int64_t begin, int64_t end) {
    if (begin >= end) return;
    if (!ranges.empty() && ranges.back().end == begin) {
      ranges.back().end = end;  // adjacent inactive slots (and the padding) make one range
    } else {
      ranges.push_back({begin, end});
    }
  };
  for (int64_t s = 0; s < seq_lens.shape[0]; ++s) {
    if (seq_len(s) == 0) add(start(s), start(s + 1));
  }
  add(start(seq_lens.shape[0]), inputs.q.shape[0]);
  return ranges;
}

int64_t row_bytes(const TensorView& view) {
  int64_t elements = 1;
  for (int d = 1; d < view.rank; ++d) elements *= view.shape[d];
  return elements * dtype_size(view.dtype);
}

ffi::Error to_ffi_error(const Status& status) {
  if (status.ok()) return ffi::Error::Success();
  const ffi::ErrorCode code =
      status.code() == StatusCode::kInvalidArgument ? ffi::ErrorCode::kInvalidArgument
      : status.code() == StatusCode::kUnsupported   ? ffi::ErrorCode::kUnimplemented
                                                    : ffi::ErrorCode::kInternal;
  return ffi::Error(code, cat(RPA_XLA_TARGET_NAME, ": ", status.message()));
}

}  // namespace rpa::xla_ffi
