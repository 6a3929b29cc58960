// The custom call's attributes (docs/xla.md): rpa's options, and which
// operands the call has. Every attribute is optional; an absent one keeps
// its default.
#pragma once

#include "rpa/attention.h"
#include "xla/ffi/api/ffi.h"

namespace rpa::xla_ffi {

namespace ffi = ::xla::ffi;

struct OperandLayout {
  // One kv_pages operand [num_pages, page_size, 2 * num_kv_heads, head_dim]
  // with K in the even heads and V in the odd ones (JAX's layout) instead of
  // k_cache and v_cache.
  bool combined_kv = false;
  bool has_sinks = false;
  bool has_kv_scales = false;  // k_scale, v_scale: fp8 caches
};

// Reads scale, sliding_window and logit_soft_cap into `options`, and
// combined_kv, has_sinks and has_kv_scales into `layout`. Fails, naming the
// attribute, on an unknown name or a value of the wrong type.
Status read_attributes(const ffi::Dictionary& attrs, AttentionOptions* options,
                       OperandLayout* layout);

}  // namespace rpa::xla_ffi
