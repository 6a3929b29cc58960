// CUDA runtime errors as rpa statuses: the library never exits on a device
// failure, it reports what failed and the runtime's reason.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "rpa/status.h"

namespace rpa::cuda {

inline Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::Ok();
  return Status::Internal(std::string("cuda backend: ") + what + " failed: " +
                          cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")");
}

}  // namespace rpa::cuda

#define RPA_RETURN_IF_CUDA_ERROR(expr, what) RPA_RETURN_IF_ERROR(::rpa::cuda::cuda_status((expr), (what)))
