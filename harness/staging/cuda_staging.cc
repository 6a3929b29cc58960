#include "staging/cuda_staging.h"

#include <cuda_runtime_api.h>

#include "cuda/cuda.h"
#include "cuda/cuda_error.h"

namespace rpa::cuda {
namespace {

// Elements from a view's first element to one past its last, strides kept.
int64_t span_elements(const TensorView& v) {
  if (v.numel() == 0) return 0;
  int64_t last = 0;
  for (int d = 0; d < v.rank; ++d) last += (v.shape[d] - 1) * v.strides[d];
  return last + 1;
}

size_t span_bytes(const TensorView& v) {
  return static_cast<size_t>(span_elements(v) * dtype_size(v.dtype));
}

}  // namespace

DeviceCopy::~DeviceCopy() {
  for (int i = 0; i < used_; ++i) cudaFree(blocks_[i]);
}

Status DeviceCopy::copy_in(const TensorView& host, TensorView* device) {
  *device = host;
  if (!host.present() || host.data == nullptr) return Status::Ok();
  const size_t bytes = span_bytes(host);
  if (bytes == 0) return Status::Ok();
  void* block = nullptr;
  RPA_RETURN_IF_CUDA_ERROR(cudaMalloc(&block, bytes), "cudaMalloc of a staged tensor");
  blocks_[used_++] = block;
  RPA_RETURN_IF_CUDA_ERROR(cudaMemcpy(block, host.data, bytes, cudaMemcpyHostToDevice),
                           "copying a staged tensor to the device");
  device->data = block;
  return Status::Ok();
}

Status DeviceCopy::upload(const AttentionInputs& host_inputs, const AttentionOutputs& host_outputs) {
  RPA_RETURN_IF_ERROR(cuda_device_status());
  inputs_ = host_inputs;
  outputs_ = host_outputs;
  RPA_RETURN_IF_ERROR(copy_in(host_inputs.q, &inputs_.q));
  RPA_RETURN_IF_ERROR(copy_in(host_inputs.k_cache, &inputs_.k_cache));
  RPA_RETURN_IF_ERROR(copy_in(host_inputs.v_cache, &inputs_.v_cache));
  RPA_RETURN_IF_ERROR(copy_in(host_inputs.sinks, &inputs_.sinks));
  RPA_RETURN_IF_ERROR(copy_in(host_outputs.out, &outputs_.out));
  return copy_in(host_outputs.lse, &outputs_.lse);
}

Status DeviceCopy::download(const AttentionOutputs& host_outputs) const {
  for (const auto& [device, host] : {std::pair{outputs_.out, host_outputs.out},
                                     std::pair{outputs_.lse, host_outputs.lse}}) {
    if (host.data == nullptr || device.data == nullptr) continue;
    RPA_RETURN_IF_CUDA_ERROR(
        cudaMemcpy(host.data, device.data, span_bytes(host), cudaMemcpyDeviceToHost),
        "copying a result back to the host");
  }
  return Status::Ok();
}

Status run_cuda_from_host(const AttentionInputs& inputs, const AttentionOptions& options,
                          const AttentionOutputs& outputs, const RunConfig& config) {
  DeviceCopy copy;
  RPA_RETURN_IF_ERROR(copy.upload(inputs, outputs));
  RunConfig on_device = config;
  on_device.backend = Backend::kCuda;
  RPA_RETURN_IF_ERROR(attention(copy.inputs(), options, copy.outputs(), on_device));
  if (on_device.cuda_stream != nullptr) {
    RPA_RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(static_cast<cudaStream_t>(on_device.cuda_stream)),
                             "waiting for the call's stream");
  }
  return copy.download(outputs);
}

}  // namespace rpa::cuda
