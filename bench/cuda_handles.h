// Owning handles for the CUDA runtime objects of `rpa bench --backend cuda`
// (device buffers, a stream, events) and CUDA errors as statuses. The bench
// never exits on a device failure: it reports what failed and the runtime's
// reason, like the library. Only built with the cuda backend.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

#include "rpa/status.h"

namespace rpa::bench {

inline Status cuda_ok(cudaError_t error, const std::string& what) {
  if (error == cudaSuccess) return Status::Ok();
  return Status::Internal("rpa bench: " + what + " failed: " + cudaGetErrorName(error) + " (" +
                          cudaGetErrorString(error) + ")");
}

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  Status allocate(size_t bytes, const std::string& what) {
    return cuda_ok(cudaMalloc(&data_, bytes), "cudaMalloc of " + what);
  }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
};

class CudaStream {
 public:
  CudaStream() = default;
  ~CudaStream() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  // A non-blocking stream: no implicit waits on the legacy default stream,
  // which the single-call series of cuda_runner.cc uses.
  Status create() {
    return cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a stream");
  }
  cudaStream_t get() const { return stream_; }
  Status synchronize() const {
    return cuda_ok(cudaStreamSynchronize(stream_), "waiting for a stream");
  }

 private:
  cudaStream_t stream_ = nullptr;
};

// A pair of events around work queued on one stream: the device's own clock,
// which host timers cannot give for work that is queued, not waited for.
class EventTimer {
 public:
  EventTimer() = default;
  ~EventTimer() {
    if (start_ != nullptr) cudaEventDestroy(start_);
    if (stop_ != nullptr) cudaEventDestroy(stop_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  Status create() {
    RPA_RETURN_IF_ERROR(cuda_ok(cudaEventCreate(&start_), "creating an event"));
    return cuda_ok(cudaEventCreate(&stop_), "creating an event");
  }
  Status start(cudaStream_t stream) {
    return cuda_ok(cudaEventRecord(start_, stream), "recording an event");
  }
  // Records the stop, waits for it and returns the seconds between the two.
  Status stop(cudaStream_t stream, double* seconds) {
    RPA_RETURN_IF_ERROR(cuda_ok(cudaEventRecord(stop_, stream), "recording an event"));
    RPA_RETURN_IF_ERROR(cuda_ok(cudaEventSynchronize(stop_), "waiting for an event"));
    float ms = 0.0f;
    RPA_RETURN_IF_ERROR(cuda_ok(cudaEventElapsedTime(&ms, start_, stop_), "reading events"));
    *seconds = static_cast<double>(ms) * 1e-3;
    return Status::Ok();
  }

 private:
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

}  // namespace rpa::bench
