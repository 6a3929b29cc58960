/* An installed-tree consumer of the C API: one decode row over 5 keys whose
 * keys are all equal, so softmax is uniform and out is the mean of v: 2. */
#include <math.h>
#include <rpa/rpa.h>
#include <stdio.h>

enum { kDim = 64, kPage = 16 };

int main(void) {
  static float q[kDim], k[kPage * kDim], v[kPage * kDim], out[kDim];
  int32_t block_table[1] = {0}, seq_lens[1] = {5}, query_start_len[2] = {0, 1};
  for (int d = 0; d < kDim; ++d) q[d] = 0.5f;
  for (int j = 0; j < kPage; ++j) {
    for (int d = 0; d < kDim; ++d) {
      k[j * kDim + d] = 1.0f;
      v[j * kDim + d] = (float)j;
    }
  }
  rpa_attention_inputs in = {
      .q = {q, RPA_F32, 4, {1, 1, 1, kDim}},
      .k_cache = {k, RPA_F32, 4, {1, kPage, 1, kDim}},
      .v_cache = {v, RPA_F32, 4, {1, kPage, 1, kDim}},
      .block_table = {block_table, RPA_I32, 2, {1, 1}},
      .seq_lens = {seq_lens, RPA_I32, 1, {1}},
      .query_start_len = {query_start_len, RPA_I32, 1, {2}},
  };
  rpa_attention_outputs outputs = {.out = {out, RPA_F32, 4, {1, 1, 1, kDim}}};
  if (rpa_attention(&in, NULL, &outputs) != RPA_OK) {
    fprintf(stderr, "rpa_attention: %s\n", rpa_last_error_message());
    return 1;
  }
  for (int d = 0; d < kDim; ++d) {
    if (fabsf(out[d] - 2.0f) > 1e-5f) {
      fprintf(stderr, "out[%d] = %g, want 2\n", d, out[d]);
      return 1;
    }
  }
  printf("rpa %s C consumer: ok\n", rpa_version());
  return 0;
}
