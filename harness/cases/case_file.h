// A case: the inputs and options of one attention call, stored as one
// .safetensors file or as a directory of .npy files plus options.json
// (docs/cases.md). `rpa run`, `rpa verify`, `rpa plan` and `rpa gen` use it.
#pragma once

#include <optional>
#include <string>

#include "cases/host_tensor.h"
#include "rpa/attention.h"

namespace rpa::cases {

struct Case {
  HostTensor q, k_cache, v_cache, block_table, seq_lens, query_start_len;
  std::optional<HostTensor> sinks;
  // Per-page dequantization scales of fp8 caches: read and kept, but no
  // backend takes fp8 yet, so callers reject a case that has them.
  std::optional<HostTensor> k_scale, v_scale;
  AttentionOptions options;

  // Views of the tensors for rpa::attention (sinks included when present).
  // Fails only for a tensor of rank above kMaxRank.
  Status inputs(AttentionInputs* inputs) const;
};

// Loads a case from `path`: a directory is read as .npy files + options.json,
// anything else as a .safetensors file. Every malformed file gives a Status
// naming the file, the tensor and what is wrong; nothing here aborts.
Status load_case(const std::string& path, Case* result);

// Copies the tensors viewed by `inputs` (dense copies of strided views) and
// `options` into a case.
Case make_case(const AttentionInputs& inputs, const AttentionOptions& options);

// Writes `c` as one .safetensors file, atomically (a temporary file renamed
// into place), so a failed write never leaves a partial file at `path`.
Status save_case(const std::string& path, const Case& c);

// Writes `c` as a directory of .npy files plus options.json (bf16 tensors as
// '<u2' with "dtype": "bf16" in options.json). Creates the directory.
Status save_case_npy(const std::string& dir, const Case& c);

}  // namespace rpa::cases
