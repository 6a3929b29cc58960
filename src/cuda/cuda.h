// The CUDA backend: the plan's items on an NVIDIA GPU (docs/contract.md §4). The plan is
// built on the host and uploaded with one copy per call; decode chains, prefill
// chains and the merge of split partials are one kernel each.
//
// Memory (RunConfig in include/rpa/attention.h): q, k_cache, v_cache, sinks,
// out and lse in device memory; the metadata and the fp8 scales in host memory.
#pragma once

#include <string>
#include <string_view>

#include "core/problem.h"
#include "rpa/attention.h"
#include "rpa/plan.h"

namespace rpa {

// Ok when a CUDA device can be used; otherwise Unsupported with the reason
// (no driver, no device, ...), which callers print when they skip. Asked
// once per process; a reference, so that asking (every host call does)
// allocates nothing.
const Status& cuda_device_status();

// True when `data` points into device (or managed) memory. False for host
// memory and whenever no device can be asked.
bool is_device_pointer(const void* data);

// Checks, before anything reads them, that each tensor lives where the cuda
// backend expects it; the message names the tensor and where it found it.
Status check_cuda_placement(const AttentionInputs& inputs, const AttentionOutputs& outputs);

// The host backends' side of the same contract: no tensor may be in device
// memory (a host backend would crash reading it); the message names the
// tensor and `backend`. Managed memory is host memory here. Ok without a
// usable device.
Status check_host_placement(const AttentionInputs& inputs, const AttentionOutputs& outputs,
                            std::string_view backend);

// Runs `plan` (of `problem`) on `stream` (a cudaStream_t; null = the default
// stream, and the call waits for the result).
Status run_cuda(const Problem& problem, const Plan& plan, const AttentionInputs& inputs,
                const AttentionOutputs& outputs, void* stream);

}  // namespace rpa
