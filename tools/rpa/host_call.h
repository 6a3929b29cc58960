// The CLI's tensors live in host memory (read from case files or generated);
// this runs a call on the backend asked for, staging them through device
// copies when that backend is cuda.
#pragma once

#include "rpa/attention.h"

namespace rpa::cli {

Status attention_from_host(const AttentionInputs& inputs, const AttentionOptions& options,
                           const AttentionOutputs& outputs, const RunConfig& config);

}  // namespace rpa::cli
