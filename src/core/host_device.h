// RPA_HOST_DEVICE marks the small inline functions that the CPU executors and
// the CUDA kernels share, so that both compile one definition.
#pragma once

#if defined(__CUDACC__)
#define RPA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RPA_HOST_DEVICE inline
#endif
