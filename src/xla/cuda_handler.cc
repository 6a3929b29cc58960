// rpa_xla_attention_cuda: the custom call on XLA's GPU backend (built with
// the cuda backend). XLA hands every operand in device memory, but rpa's cuda
// backend validates and plans on the host from host-memory metadata
// (docs/cuda.md): the handler copies block_table, seq_lens, query_start_len
// and the fp8 scales to the host in XLA's stream order, then queues the
// kernels on XLA's stream and returns without waiting for them.
//
// The metadata copy waits for the stream, so the handler declares no
// command-buffer (CUDA graph) compatibility: XLA runs it as a plain thunk.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "call_frame.h"
#include "core/message.h"
#include "rpa_xla.h"

namespace rpa::xla_ffi {
namespace {

Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::Ok();
  return Status::Internal(
      cat("cuda: ", what, ": ", cudaGetErrorName(error), ": ", cudaGetErrorString(error)));
}

// Host copies of the metadata tensors, replacing their device views.
class HostMetadata {
 public:
  // Queues the copy of `view` (dense, row-major, from XLA) and points it at
  // the host copy; an absent view stays absent.
  Status copy(TensorView* view, cudaStream_t stream) {
    if (!view->present()) return Status::Ok();
    if (view->numel() == 0) {
      view->data = nullptr;  // an empty view reads nothing; null keeps it off the device
      return Status::Ok();
    }
    const size_t bytes = static_cast<size_t>(view->numel() * dtype_size(view->dtype));
    buffers_.emplace_back(bytes);
    RPA_RETURN_IF_ERROR(cuda_status(
        cudaMemcpyAsync(buffers_.back().data(), view->data, bytes, cudaMemcpyDeviceToHost, stream),
        "copying metadata to the host"));
    view->data = buffers_.back().data();
    return Status::Ok();
  }

 private:
  std::vector<std::vector<std::byte>> buffers_;
};

Status zero_rows(const TensorView& view, const std::vector<RowRange>& rows, cudaStream_t stream) {
  if (!view.present()) return Status::Ok();
  const int64_t bytes = row_bytes(view);
  for (const RowRange& r : rows) {
    RPA_RETURN_IF_ERROR(
        cuda_status(cudaMemsetAsync(static_cast<char*>(view.data) + r.begin * bytes, 0,
                                    static_cast<size_t>((r.end - r.begin) * bytes), stream),
                    "zeroing the rows no slot writes"));
  }
  return Status::Ok();
}

Status run(cudaStream_t stream, const ffi::RemainingArgs& args, const ffi::RemainingRets& rets,
           const ffi::Dictionary& attrs) {
  Call call;
  RPA_RETURN_IF_ERROR(read_call(attrs, args, rets, &call));
  HostMetadata host;
  RPA_RETURN_IF_ERROR(host.copy(&call.inputs.block_table, stream));
  RPA_RETURN_IF_ERROR(host.copy(&call.inputs.seq_lens, stream));
  RPA_RETURN_IF_ERROR(host.copy(&call.inputs.query_start_len, stream));
  RPA_RETURN_IF_ERROR(host.copy(&call.inputs.k_scale, stream));
  RPA_RETURN_IF_ERROR(host.copy(&call.inputs.v_scale, stream));
  RPA_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream), "waiting for the metadata"));

  RunConfig config;
  config.backend = Backend::kCuda;
  config.cuda_stream = stream;
  RPA_RETURN_IF_ERROR(attention(call.inputs, call.options, call.outputs, config));
  const std::vector<RowRange> rows = unwritten_rows(call.inputs);
  RPA_RETURN_IF_ERROR(zero_rows(call.outputs.out, rows, stream));
  return zero_rows(call.outputs.lse, rows, stream);
}

ffi::Error attention_cuda(cudaStream_t stream, ffi::RemainingArgs args, ffi::RemainingRets rets,
                          ffi::Dictionary attrs) {
  return to_ffi_error(run(stream, args, rets, attrs));
}

}  // namespace
}  // namespace rpa::xla_ffi

XLA_FFI_DEFINE_HANDLER_SYMBOL(rpa_xla_attention_cuda, rpa::xla_ffi::attention_cuda,
                              ::xla::ffi::Ffi::Bind()
                                  .Ctx<::xla::ffi::PlatformStream<cudaStream_t>>()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attrs<::xla::ffi::Dictionary>());
