// The host side of the cuda backend: device checks, placement, the plan
// upload and the launches of one call.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "core/message.h"
#include "cuda/cuda.h"
#include "cuda/cuda_error.h"
#include "cuda/device_plan.h"
#include "cuda/launch.h"

namespace rpa {
namespace {

using cuda::KernelArgs;

enum class Where { kHost, kDevice, kManaged, kUnknown };

// Where `data` lives; `device`, when given, receives the GPU it belongs to.
Where where_is(const void* data, int* device = nullptr) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, data) != cudaSuccess) {
    cudaGetLastError();  // not sticky, but leave no error behind for the next call
    return Where::kUnknown;
  }
  if (device != nullptr) *device = attributes.device;
  switch (attributes.type) {
    case cudaMemoryTypeDevice:
      return Where::kDevice;
    case cudaMemoryTypeManaged:
      return Where::kManaged;
    default:
      return Where::kHost;
  }
}

const char* where_name(Where w) {
  switch (w) {
    case Where::kHost:
      return "host memory";
    case Where::kDevice:
      return "device memory";
    case Where::kManaged:
      return "managed memory";
    default:
      return "memory the CUDA runtime does not know";
  }
}

Status expect_device(const TensorView& v, const char* name) {
  if (!v.present() || v.data == nullptr) return Status::Ok();
  int device = -1;
  const Where w = where_is(v.data, &device);
  if (w != Where::kDevice && w != Where::kManaged) {
    return Status::Invalid(cat(name, ".data is in ", where_name(w), "; the cuda backend reads and writes ",
                               name, " in device memory (cudaMalloc'ed or managed)"));
  }
  // Kernels run on the current device: memory of another GPU is not theirs
  // to read (managed memory migrates, so any GPU may hold it).
  int current = 0;
  if (w == Where::kDevice && cudaGetDevice(&current) == cudaSuccess && device >= 0 &&
      device != current) {
    return Status::Invalid(cat(name, ".data is on GPU ", device, ", but the call runs on the current ",
                               "device, GPU ", current, ": make GPU ", device,
                               " current first (cudaSetDevice, torch.cuda.set_device)"));
  }
  return Status::Ok();
}

Status expect_host(const TensorView& v, const char* name) {
  if (!v.present() || v.data == nullptr) return Status::Ok();
  const Where w = where_is(v.data);
  if (w != Where::kDevice) return Status::Ok();
  return Status::Invalid(cat(name, ".data is in device memory; the cuda backend validates and plans ",
                             "from host memory: pass a host copy of ", name));
}

// The kernels read K/V rows with 16-byte vector loads (8 bytes for fp8):
// every row of the caches must start on such a boundary. Strides of extent-1
// dimensions are never stepped, so they do not matter.
Status check_row_alignment(const TensorView& v, const char* name) {
  const int64_t bytes = v.dtype == DType::kF8E4M3 ? 8 : 16;
  if (reinterpret_cast<uintptr_t>(v.data) % bytes != 0) {
    return Status::Unsupported(cat("cuda backend: ", name, ".data must be ", bytes,
                                   "-byte aligned for its vector loads"));
  }
  for (int d = 0; d < 3; ++d) {
    if (v.shape[d] > 1 && (v.strides[d] * dtype_size(v.dtype)) % bytes != 0) {
      return Status::Unsupported(cat("cuda backend: ", name, ".strides[", d, "] = ", v.strides[d],
                                     " elements is not a multiple of ", bytes,
                                     " bytes, which its vector loads need"));
    }
  }
  return Status::Ok();
}

cuda::DeviceStrided3 strided3(const TensorView& v) {
  cuda::DeviceStrided3 s;
  s.data = v.data;
  for (int d = 0; d < 3; ++d) s.s[d] = v.strides[d];
  return s;
}

KernelArgs describe_args(const Problem& p, const AttentionInputs& inputs,
                         const AttentionOutputs& outputs) {
  KernelArgs a;
  a.num_kv_heads = static_cast<int32_t>(p.num_kv_heads);
  a.heads_per_kv = static_cast<int32_t>(p.heads_per_kv);
  a.head_dim = static_cast<int32_t>(p.head_dim);
  a.page_size = static_cast<int32_t>(p.page_size);
  a.q_dtype = p.dtype;
  a.kv_dtype = p.kv_dtype;
  a.out_dtype = p.out_dtype;
  a.scale = p.scale;
  a.logit_soft_cap = p.logit_soft_cap;
  a.sliding_window = p.sliding_window;
  a.q = strided3(inputs.q);
  a.k_cache = strided3(inputs.k_cache);
  a.v_cache = strided3(inputs.v_cache);
  a.out = strided3(outputs.out);
  if (outputs.lse.present()) {
    a.lse = outputs.lse.as<float>();
    for (int d = 0; d < 3; ++d) a.lse_s[d] = outputs.lse.strides[d];
  }
  a.sinks = p.sinks;
  return a;
}

// Frees the call's device buffer in stream order on every way out.
struct StreamBuffer {
  std::byte* data = nullptr;
  cudaStream_t stream = nullptr;
  ~StreamBuffer() {
    if (data != nullptr) cudaFreeAsync(data, stream);
  }
};

// Whether the runtime finds a driver and a device, asked once per process
// (cuda_device_status): the answer does not change while it runs, and kAuto
// asks on every call.
Status probe_device() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return Status::Unsupported(cat("cuda backend: no usable CUDA device (", cudaGetErrorName(error),
                                   ": ", cudaGetErrorString(error), ")"));
  }
  if (count == 0) return Status::Unsupported("cuda backend: no CUDA device found");
  return Status::Ok();
}

}  // namespace

const Status& cuda_device_status() {
  static const Status status = probe_device();
  return status;
}

bool is_device_pointer(const void* data) {
  if (data == nullptr || !cuda_device_status().ok()) return false;
  const Where w = where_is(data);
  return w == Where::kDevice || w == Where::kManaged;
}

namespace {

// Every tensor of a call, and whether the cuda backend wants it in device
// memory (the data) or in host memory (metadata and fp8 scales).
struct Placed {
  const TensorView* view;
  const char* name;
  bool on_device;
};

std::array<Placed, 11> placements(const AttentionInputs& inputs, const AttentionOutputs& outputs) {
  return {{{&inputs.q, "q", true},
           {&inputs.k_cache, "k_cache", true},
           {&inputs.v_cache, "v_cache", true},
           {&inputs.sinks, "sinks", true},
           {&outputs.out, "out", true},
           {&outputs.lse, "lse", true},
           {&inputs.block_table, "block_table", false},
           {&inputs.seq_lens, "seq_lens", false},
           {&inputs.query_start_len, "query_start_len", false},
           {&inputs.k_scale, "k_scale", false},
           {&inputs.v_scale, "v_scale", false}}};
}

}  // namespace

Status check_cuda_placement(const AttentionInputs& inputs, const AttentionOutputs& outputs) {
  RPA_RETURN_IF_ERROR(cuda_device_status());
  for (const Placed& t : placements(inputs, outputs)) {
    RPA_RETURN_IF_ERROR(t.on_device ? expect_device(*t.view, t.name) : expect_host(*t.view, t.name));
  }
  return Status::Ok();
}

Status check_host_placement(const AttentionInputs& inputs, const AttentionOutputs& outputs,
                            std::string_view backend) {
  // Without a usable device no pointer can be device memory (and asking
  // would fail): nothing to check.
  if (!cuda_device_status().ok()) return Status::Ok();
  for (const Placed& t : placements(inputs, outputs)) {
    const TensorView& view = *t.view;
    if (!view.present() || view.data == nullptr || where_is(view.data) != Where::kDevice) continue;
    return Status::Invalid(cat(t.name, ".data is in GPU device memory; backend '", backend,
                               "' reads and writes host memory: use backend 'cuda' (or 'auto', ",
                               "which picks it when q is in device memory)"));
  }
  return Status::Ok();
}

Status run_cuda(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
                const AttentionOutputs& outputs, void* stream_handle) {
  RPA_RETURN_IF_ERROR(cuda_device_status());
  RPA_RETURN_IF_ERROR(check_row_alignment(inputs.k_cache, "k_cache"));
  RPA_RETURN_IF_ERROR(check_row_alignment(inputs.v_cache, "v_cache"));
  if (plan.decode_items.empty() && plan.prefill_items.empty()) return Status::Ok();

  KernelArgs args = describe_args(problem, inputs, outputs);
  // Everything that can refuse the call is asked before the first launch, so
  // an error leaves out untouched (docs/contract.md §3).
  int device = 0, optin = 0;
  RPA_RETURN_IF_CUDA_ERROR(cudaGetDevice(&device), "asking for the current device");
  RPA_RETURN_IF_CUDA_ERROR(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
      "asking for the shared memory per block");
  const auto fits = [&](const char* kernel, int needed) {
    if (needed <= optin) return Status::Ok();
    return Status::Unsupported(cat("cuda backend: ", kernel, " at head_dim ", problem.head_dim, " needs ",
                                   needed, " bytes of shared memory per block; this GPU offers ",
                                   optin));
  };
  if (!plan.decode_items.empty()) {
    RPA_RETURN_IF_ERROR(fits("decode", cuda::decode_kernel_smem_bytes(args, optin)));
  }
  if (!plan.prefill_items.empty()) RPA_RETURN_IF_ERROR(fits("prefill", cuda::prefill_smem_bytes(args)));
  cudaGetLastError();  // an earlier, unrelated failure must not be reported as ours
  const cuda::PackedPlan packed = cuda::pack_plan(problem, plan);
  StreamBuffer buffer;
  buffer.stream = static_cast<cudaStream_t>(stream_handle);
  RPA_RETURN_IF_CUDA_ERROR(
      cudaMallocAsync(reinterpret_cast<void**>(&buffer.data), packed.total_bytes, buffer.stream),
      "allocating the plan and partials buffer");
  // From pageable memory the copy returns once the image is staged, so the
  // host image may go when this function returns.
  RPA_RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(buffer.data, packed.image.data(), packed.image.size(),
                                           cudaMemcpyHostToDevice, buffer.stream),
                           "uploading the plan");
  cuda::bind_plan(packed, plan, buffer.data, &args);
  if (args.num_decode_chains > 0) {
    RPA_RETURN_IF_CUDA_ERROR(cuda::launch_decode(args, optin, buffer.stream),
                             "launching the decode kernel");
  }
  if (args.num_prefill_chains > 0) {
    RPA_RETURN_IF_CUDA_ERROR(cuda::launch_prefill(args, buffer.stream), "launching the prefill kernel");
  }
  if (args.num_merges > 0) {
    RPA_RETURN_IF_CUDA_ERROR(cuda::launch_merge(args, buffer.stream), "launching the merge kernel");
  }
  if (stream_handle == nullptr) {
    RPA_RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(buffer.stream), "running the call's kernels");
  }
  return Status::Ok();
}

}  // namespace rpa
