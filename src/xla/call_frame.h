// One rpa_ragged_paged_attention custom call (docs/xla.md) read from XLA's
// typed FFI call frame: the attributes become AttentionOptions, the operand
// and result buffers become rpa tensor views over XLA's own memory (no copy).
// The host and CUDA handlers share it; rpa::attention then checks the views
// against the contract like any other call.
#pragma once

#include <cstdint>
#include <vector>

#include "attributes.h"
#include "rpa/attention.h"
#include "xla/ffi/api/ffi.h"

namespace rpa::xla_ffi {

struct Call {
  AttentionOptions options;
  OperandLayout layout;
  AttentionInputs inputs;
  AttentionOutputs outputs;
};

// Decodes attributes, operands and results. Fails, naming the attribute,
// operand or result, on an unknown attribute or one of the wrong type, a
// wrong number of operands or results, an element type rpa does not take, a
// rank above 4, or a kv_pages operand that is not 4-d with an even dimension 2.
// Shapes are left to rpa::attention.
Status read_call(const ffi::Dictionary& attrs, const ffi::RemainingArgs& args,
                 const ffi::RemainingRets& rets, Call* call);

// A range of token rows [begin, end) of out and lse.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
};

// The token rows of out (and lse) that rpa::attention does not write: rows of
// no slot (padding) and rows of inactive slots. XLA's result buffers start
// with whatever was there, so the handlers zero these rows after a
// successful call, which makes a jitted call equal rpa.attention bit for bit.
// Reads seq_lens and query_start_len, which must be validated and in host
// memory.
std::vector<RowRange> unwritten_rows(const AttentionInputs& inputs);

// Bytes of one token row of `view` (a contiguous result buffer).
int64_t row_bytes(const TensorView& view);

// rpa's status as the FFI error XLA reports: the message is rpa's own,
// prefixed with the target name; invalid arguments stay INVALID_ARGUMENT,
// unsupported calls are UNIMPLEMENTED.
ffi::Error to_ffi_error(const Status& status);

}  // namespace rpa::xla_ffi
