// C API views of C++ views, for tests that call the C entries on the same
// tensors as the C++ ones (faults_test.cc, concurrency_test.cc).
#pragma once

#include "rpa/attention.h"
#include "rpa/rpa.h"

namespace rpa {

// rpa::DType and rpa_dtype agree value for value (rpa.h, dtype.h).
inline rpa_tensor to_c(const TensorView& v) {
  rpa_tensor t{};
  t.data = v.data;
  t.dtype = static_cast<int32_t>(v.dtype);
  t.rank = v.rank;
  for (int d = 0; d < v.rank; ++d) t.shape[d] = v.shape[d], t.strides[d] = v.strides[d];
  return t;
}

inline rpa_attention_inputs to_c(const AttentionInputs& in) {
  return {to_c(in.q),        to_c(in.k_cache),         to_c(in.v_cache),
          to_c(in.block_table), to_c(in.seq_lens),     to_c(in.query_start_len),
          to_c(in.sinks),    to_c(in.k_scale),         to_c(in.v_scale)};
}

inline rpa_attention_outputs to_c(const AttentionOutputs& out) { return {to_c(out.out), to_c(out.lse)}; }

inline rpa_layer_inputs to_c_layer(const AttentionInputs& in) {
  return {to_c(in.q), to_c(in.k_cache), to_c(in.v_cache), to_c(in.sinks), to_c(in.k_scale), to_c(in.v_scale)};
}

}  // namespace rpa
