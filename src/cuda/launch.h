// The kernel launches of one call, in stream order: decode chains, prefill
// chains, then the merge of split partials (which reads what both wrote).
// Each picks its template instance from the call's dtypes and sizes.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/kernel_args.h"

namespace rpa::cuda {

// Dynamic shared memory per block of the prefill kernel this call would use.
int prefill_smem_bytes(const KernelArgs& args);

// Dynamic shared memory per block of the decode kernel this call would use
// on a device offering smem_optin bytes per block (opt-in).
int decode_kernel_smem_bytes(const KernelArgs& args, int smem_optin);

// The tensor-core decode kernel where the call's dtypes and head_dim allow
// it and its rings fit smem_optin, else the CUDA-core one.
cudaError_t launch_decode(const KernelArgs& args, int smem_optin, cudaStream_t stream);
cudaError_t launch_prefill(const KernelArgs& args, cudaStream_t stream);
cudaError_t launch_merge(const KernelArgs& args, cudaStream_t stream);

}  // namespace rpa::cuda
