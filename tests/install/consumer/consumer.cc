// An installed-tree consumer of the C++ API: the same uniform-softmax check as
// consumer.c.
#include <rpa/attention.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  constexpr int64_t kDim = 64, kPage = 16;
  std::vector<float> q(kDim, 0.5f), k(kPage * kDim, 1.0f), v(kPage * kDim), out(kDim);
  for (int64_t j = 0; j < kPage; ++j) {
    for (int64_t d = 0; d < kDim; ++d) v[j * kDim + d] = static_cast<float>(j);
  }
  const int32_t block_table[1] = {0}, seq_lens[1] = {5}, query_start_len[2] = {0, 1};
  using rpa::DType;
  using rpa::TensorView;
  rpa::AttentionInputs in;
  in.q = TensorView::contiguous(q.data(), DType::kF32, {1, 1, 1, kDim});
  in.k_cache = TensorView::contiguous(k.data(), DType::kF32, {1, kPage, 1, kDim});
  in.v_cache = TensorView::contiguous(v.data(), DType::kF32, {1, kPage, 1, kDim});
  in.block_table = TensorView::contiguous(block_table, DType::kI32, {1, 1});
  in.seq_lens = TensorView::contiguous(seq_lens, DType::kI32, {1});
  in.query_start_len = TensorView::contiguous(query_start_len, DType::kI32, {2});
  rpa::AttentionOutputs outputs;
  outputs.out = TensorView::contiguous(out.data(), DType::kF32, {1, 1, 1, kDim});
  if (const rpa::Status s = rpa::attention(in, {}, outputs); !s.ok()) {
    std::fprintf(stderr, "rpa::attention: %s\n", s.message().c_str());
    return 1;
  }
  for (int64_t d = 0; d < kDim; ++d) {
    if (std::fabs(out[d] - 2.0f) > 1e-5f) {
      std::fprintf(stderr, "out[%lld] = %g, want 2\n", static_cast<long long>(d), out[d]);
      return 1;
    }
  }
  std::printf("rpa C++ consumer: ok\n");
  return 0;
}
