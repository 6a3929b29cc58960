// C structs to C++ types. The C side may hand us any bit pattern, so every enum
// and rank is range-checked here before the C++ API sees it.
#pragma once

#include "rpa/attention.h"
#include "rpa/plan.h"
#include "rpa/rpa.h"

namespace rpa::capi {

// `name` is the tensor's name in messages ("q", "outputs.lse").
Status to_view(const rpa_tensor& tensor, const char* name, TensorView* view);

Status to_inputs(const rpa_attention_inputs& inputs, AttentionInputs* out);
Status to_outputs(const rpa_attention_outputs& outputs, AttentionOutputs* out);

// A null `options` means all defaults.
Status to_options(const rpa_options* options, AttentionOptions* attention, RunConfig* config);

rpa_plan_stats to_c(const PlanStats& stats);

}  // namespace rpa::capi
