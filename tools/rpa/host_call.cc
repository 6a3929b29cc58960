#include "host_call.h"

#ifdef RPA_WITH_CUDA
#include "staging/cuda_staging.h"
#endif

namespace rpa::cli {

Status attention_from_host(const AttentionInputs& inputs, const AttentionOptions& options,
                           const AttentionOutputs& outputs, const RunConfig& config) {
#ifdef RPA_WITH_CUDA
  if (config.backend == Backend::kCuda) {
    return cuda::run_cuda_from_host(inputs, options, outputs, config);
  }
#endif
  return attention(inputs, options, outputs, config);
}

}  // namespace rpa::cli
