// Device copies of a call whose tensors were made in host memory: how the CLI,
// the tests and the benchmarks, which generate their batches on the host, run
// the cuda backend. Not a public API: a serving stack keeps its tensors on the
// device and calls rpa::attention with them directly.
#pragma once

#include <cstddef>

#include "rpa/attention.h"

namespace rpa::cuda {

class DeviceCopy {
 public:
  DeviceCopy() = default;
  ~DeviceCopy();
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;

  // Copies q, k_cache, v_cache and sinks to the device and makes device out
  // and lse holding the host ones' contents (rows a call does not write keep
  // them). Metadata and fp8 scales stay the host's. Strides are kept.
  Status upload(const AttentionInputs& host_inputs, const AttentionOutputs& host_outputs);

  const AttentionInputs& inputs() const { return inputs_; }
  const AttentionOutputs& outputs() const { return outputs_; }

  // Copies the device out (and lse) back into the host views given to upload.
  Status download(const AttentionOutputs& host_outputs) const;

 private:
  Status copy_in(const TensorView& host, TensorView* device);
  void* blocks_[8] = {};
  int used_ = 0;
  AttentionInputs inputs_;
  AttentionOutputs outputs_;
};

// upload, rpa::attention on the cuda backend with the device copies, download:
// the host-memory call of `config`, run on the GPU.
Status run_cuda_from_host(const AttentionInputs& inputs, const AttentionOptions& options,
                          const AttentionOutputs& outputs, const RunConfig& config);

}  // namespace rpa::cuda
