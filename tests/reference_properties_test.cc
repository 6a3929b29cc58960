// Properties of the reference backend on generated batches: invariances that
// hold whatever the values are, so they check the oracle without a second one.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "generate/batch.h"
#include "rpa/attention.h"

namespace rpa {
namespace {

struct Config {
  DType dtype;
  int32_t heads_per_kv;
  int32_t page_size;
  int32_t window;
  float soft_cap;
  bool sinks;
  uint64_t seed;
};

// GQA 1/4/8 × page 16/32/64 × f32/bf16/f16, with and without window, soft-cap, sinks.
constexpr Config kConfigs[] = {
    {DType::kF32, 1, 16, 0, 0.0f, false, 1},  {DType::kBF16, 4, 32, 0, 0.0f, true, 2},
    {DType::kF16, 8, 64, 0, 0.0f, false, 3},  {DType::kBF16, 8, 16, 7, 0.0f, false, 4},
    {DType::kF32, 4, 16, 0, 5.0f, true, 5},   {DType::kF16, 1, 32, 33, 3.0f, true, 6},
    {DType::kBF16, 4, 64, 20, 2.0f, true, 7},
};

testing::Message describe(const Config& c) {
  return testing::Message() << dtype_name(c.dtype) << " gqa " << c.heads_per_kv << " page "
                            << c.page_size << " window " << c.window << " cap " << c.soft_cap
                            << " sinks " << c.sinks << " seed " << c.seed;
}

// Small batches: the whole suite runs under sanitizers on two cores.
gen::BatchSpec spec_for(const Config& c) {
  gen::BatchSpec spec;
  spec.seed = c.seed;
  spec.dtype = c.dtype;
  spec.out_dtype = c.dtype;
  spec.heads_per_kv = c.heads_per_kv;
  spec.num_kv_heads = c.heads_per_kv == 8 ? 1 : 2;
  spec.page_size = c.page_size;
  spec.options.sliding_window = c.window;
  spec.options.logit_soft_cap = c.soft_cap;
  spec.sinks = c.sinks;
  spec.batch_capacity = 10;
  spec.num_active = 5;
  spec.max_context = 70;
  spec.max_chunk = 16;
  spec.max_prompt = 24;
  return spec;
}

struct Result {
  std::vector<uint8_t> out;
  std::vector<float> lse;
};

Result run(const gen::Batch& b, const AttentionInputs& in) {
  Result r{b.make_out(), b.make_lse()};
  const Status status = attention(in, b.spec.options, {b.out_view(r.out), b.lse_view(r.lse)},
                                  {.backend = Backend::kReference});
  EXPECT_TRUE(status.ok()) << status.message();
  return r;
}
Result run(const gen::Batch& b) { return run(b, b.inputs()); }

int64_t row_elems(const gen::BatchSpec& s) {
  return int64_t{s.num_kv_heads} * s.heads_per_kv * s.head_dim;
}
int64_t token_bytes(const gen::BatchSpec& s) {
  return int64_t{s.num_kv_heads} * s.head_dim * dtype_size(s.dtype);
}
bool active(const gen::Batch& b, int32_t s) {
  return b.seq_lens[s] > 0 && b.query_start_len[s + 1] > b.query_start_len[s];
}

// Element offset in k_cache / v_cache of key `j` of slot `s`, kv head `h`.
int64_t key_at(const gen::Batch& b, int32_t s, int64_t j, int64_t h) {
  const int64_t page = b.block_table[int64_t{s} * b.max_pages_per_seq + j / b.spec.page_size];
  return ((page * b.spec.page_size + j % b.spec.page_size) * b.spec.num_kv_heads + h) *
         b.spec.head_dim;
}

// Expects out row (t, h, ·) to equal, bit for bit in the out dtype, the V row
// of kv head h at element offset `v_row` (a V value is exact in any out dtype).
void expect_out_is_v_row(const gen::Batch& b, const Result& r, int64_t t, int64_t h,
                         int64_t v_row) {
  const gen::BatchSpec& s = b.spec;
  for (int64_t g = 0; g < s.heads_per_kv; ++g) {
    const int64_t out_row = ((t * s.num_kv_heads + h) * s.heads_per_kv + g) * s.head_dim;
    for (int64_t d = 0; d < s.head_dim; ++d) {
      ASSERT_EQ(load_as_f32(r.out.data(), s.out_dtype, out_row + d),
                load_as_f32(b.v_cache.data(), s.dtype, v_row + d))
          << "row " << t << " kv head " << h << " query head " << g << " d " << d;
    }
  }
}

TEST(ReferenceProperties, DeadDataNeverLeaksAndUnownedRowsKeepTheSentinel) {
  for (const Config& c : kConfigs) {
    SCOPED_TRACE(describe(c));
    const gen::Batch b = gen::generate(spec_for(c));
    const Result r = run(b);
    const int64_t live = b.live_rows() * row_elems(b.spec);
    for (int64_t i = 0; i < live; ++i) {
      ASSERT_TRUE(std::isfinite(load_as_f32(r.out.data(), b.spec.out_dtype, i))) << i;
    }
    const int64_t live_heads = b.live_rows() * b.spec.num_kv_heads * b.spec.heads_per_kv;
    for (int64_t i = 0; i < live_heads; ++i) ASSERT_TRUE(std::isfinite(r.lse[i])) << i;
    const std::vector<uint8_t> sentinel = b.make_out();
    const int64_t live_bytes = live * dtype_size(b.spec.out_dtype);
    EXPECT_TRUE(std::equal(r.out.begin() + live_bytes, r.out.end(), sentinel.begin() + live_bytes));
    for (size_t i = live_heads; i < r.lse.size(); ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(r.lse[i]), 0xffffffffu) << i;
    }
  }
}

TEST(ReferenceProperties, IdenticalValueRowsGiveThatRow) {
  for (Config c : kConfigs) {
    c.sinks = false;  // a sink's weight has no value row: out would be shrunk toward 0
    SCOPED_TRACE(describe(c));
    gen::Batch b = gen::generate(spec_for(c));
    // Every live V token becomes the first live token of the first active slot;
    // dead (NaN) tokens stay NaN.
    int32_t slot = 0;
    while (!active(b, slot)) ++slot;
    const int64_t bytes = token_bytes(b.spec);
    const auto first_token = b.v_cache.begin() + key_at(b, slot, 0, 0) * dtype_size(c.dtype);
    const std::vector<uint8_t> row(first_token, first_token + bytes);
    for (size_t at = 0; at < b.v_cache.size(); at += bytes) {
      if (!std::isnan(load_as_f32(b.v_cache.data() + at, c.dtype, 0))) {
        std::memcpy(b.v_cache.data() + at, row.data(), bytes);
      }
    }
    const Result r = run(b);
    const int64_t v_row = key_at(b, slot, 0, 0);
    for (int64_t t = 0; t < b.live_rows(); ++t) {
      for (int64_t h = 0; h < b.spec.num_kv_heads; ++h) {
        expect_out_is_v_row(b, r, t, h, v_row + h * b.spec.head_dim);
      }
    }
  }
}

TEST(ReferenceProperties, ASingleVisibleKeyGivesItsValueRow) {
  for (Config c : kConfigs) {
    c.sinks = false;
    for (int32_t window : {0, 1}) {
      c.window = window;
      SCOPED_TRACE(describe(c));
      gen::BatchSpec spec = spec_for(c);
      spec.fresh_weight = 2.0;  // enough fresh prompts, whose row 0 sees only key 0
      const gen::Batch b = gen::generate(spec);
      const Result r = run(b);
      int checked = 0;
      for (int32_t s = 0; s < spec.batch_capacity; ++s) {
        if (!active(b, s)) continue;
        const int64_t q_start = b.query_start_len[s];
        const int64_t q_len = b.query_start_len[s + 1] - q_start;
        const int64_t context = b.seq_lens[s] - q_len;
        for (int64_t i = 0; i < q_len; ++i) {
          // Window 1: every row sees only itself. No window: only position 0 does.
          if (window != 1 && context + i != 0) continue;
          ++checked;
          for (int64_t h = 0; h < spec.num_kv_heads; ++h) {
            expect_out_is_v_row(b, r, q_start + i, h, key_at(b, s, context + i, h));
          }
        }
      }
      EXPECT_GT(checked, 0);
    }
  }
}

TEST(ReferenceProperties, PermutingPhysicalPagesChangesNothing) {
  for (const Config& c : kConfigs) {
    SCOPED_TRACE(describe(c));
    const gen::Batch b = gen::generate(spec_for(c));
    gen::Batch moved = b;
    std::vector<int32_t> to(b.num_pages);
    std::iota(to.begin(), to.end(), 0);
    std::mt19937 shuffler(static_cast<uint32_t>(c.seed));
    std::shuffle(to.begin(), to.end(), shuffler);
    const int64_t page_bytes = b.spec.page_size * token_bytes(b.spec);
    for (int32_t page = 0; page < b.num_pages; ++page) {
      std::memcpy(&moved.k_cache[to[page] * page_bytes], &b.k_cache[page * page_bytes], page_bytes);
      std::memcpy(&moved.v_cache[to[page] * page_bytes], &b.v_cache[page * page_bytes], page_bytes);
    }
    for (int32_t& e : moved.block_table) {
      if (e >= 0 && e < b.num_pages) e = to[e];  // garbage stays garbage
    }
    const Result r = run(b);
    const Result m = run(moved);
    EXPECT_EQ(r.out, m.out);
    EXPECT_EQ(std::memcmp(r.lse.data(), m.lse.data(), r.lse.size() * sizeof(float)), 0);
  }
}

// The inputs of slot `s` alone, at slot index `index` of a batch of capacity
// 3, over the same caches, with one NaN padding row after its own.
struct Alone {
  std::vector<uint8_t> q;
  std::vector<int32_t> table, seq_lens, query_start_len;
  AttentionInputs in;
  gen::Batch shape;  // a copy of the batch's spec and sizes, for make_out and views
};

Alone alone(const gen::Batch& b, int32_t s, int32_t index) {
  Alone a;
  const int64_t q_start = b.query_start_len[s];
  const int64_t q_len = b.query_start_len[s + 1] - q_start;
  const int64_t q_row = row_elems(b.spec) * dtype_size(b.spec.dtype);
  a.q.assign((q_len + 1) * q_row, 0xff);
  std::memcpy(a.q.data(), &b.q[q_start * q_row], q_len * q_row);
  const int64_t width = b.max_pages_per_seq;
  a.table.assign(3 * width, -1);
  std::copy_n(&b.block_table[s * width], width, &a.table[index * width]);
  a.seq_lens.assign(3, 0);
  a.seq_lens[index] = b.seq_lens[s];
  a.query_start_len.assign(4, 0);
  for (int32_t i = 0; i < 3; ++i) {
    a.query_start_len[i + 1] = a.query_start_len[i] + static_cast<int32_t>(i == index ? q_len : 0);
  }
  a.shape.spec = b.spec;
  a.shape.num_tokens = static_cast<int32_t>(q_len + 1);
  a.in = b.inputs();
  const gen::BatchSpec& spec = b.spec;
  a.in.q = TensorView::contiguous(a.q.data(), spec.dtype,
                                  {q_len + 1, spec.num_kv_heads, spec.heads_per_kv, spec.head_dim});
  a.in.block_table = TensorView::contiguous(a.table.data(), DType::kI32, {3, width});
  a.in.seq_lens = TensorView::contiguous(a.seq_lens.data(), DType::kI32, {3});
  a.in.query_start_len = TensorView::contiguous(a.query_start_len.data(), DType::kI32, {4});
  return a;
}

TEST(ReferenceProperties, ASequenceDoesNotDependOnTheRestOfTheBatch) {
  for (const Config& c : {kConfigs[1], kConfigs[3], kConfigs[5]}) {
    SCOPED_TRACE(describe(c));
    const gen::Batch b = gen::generate(spec_for(c));
    const Result whole = run(b);
    const int64_t out_row = row_elems(b.spec) * dtype_size(b.spec.out_dtype);
    const int64_t lse_row = int64_t{b.spec.num_kv_heads} * b.spec.heads_per_kv;
    for (int32_t s = 0; s < b.spec.batch_capacity; ++s) {
      if (!active(b, s)) continue;
      const Alone a = alone(b, s, s == 1 ? 2 : 1);
      const Result r = run(a.shape, a.in);
      const int64_t q_start = b.query_start_len[s];
      const int64_t q_len = b.query_start_len[s + 1] - q_start;
      EXPECT_TRUE(std::equal(r.out.begin(), r.out.begin() + q_len * out_row,
                             whole.out.begin() + q_start * out_row))
          << "slot " << s;
      EXPECT_EQ(
          std::memcmp(r.lse.data(), &whole.lse[q_start * lse_row], q_len * lse_row * sizeof(float)),
          0)
          << "slot " << s;
    }
  }
}

TEST(ReferenceProperties, NarrowOutputIsTheRoundedF32Output) {
  for (const Config& c : kConfigs) {
    if (c.dtype == DType::kF32) continue;
    SCOPED_TRACE(describe(c));
    gen::BatchSpec spec = spec_for(c);
    const gen::Batch narrow = gen::generate(spec);
    spec.out_dtype = DType::kF32;
    const gen::Batch wide = gen::generate(spec);  // the same inputs: out_dtype draws nothing
    ASSERT_EQ(narrow.q, wide.q);
    const Result n = run(narrow);
    const Result w = run(wide);
    const int64_t live = narrow.live_rows() * row_elems(spec);
    for (int64_t i = 0; i < live; ++i) {
      const float f32 = load_as_f32(w.out.data(), DType::kF32, i);
      const uint16_t rounded = c.dtype == DType::kBF16 ? f32_to_bf16(f32) : f32_to_f16(f32);
      uint16_t got = 0;
      std::memcpy(&got, &n.out[i * 2], 2);
      ASSERT_EQ(got, rounded) << i;
    }
  }
}

// Copies a contiguous view into `buffer` with its dim-0 slices `extra`
// elements further apart (the gap filled with 0xff), and views the copy.
TensorView spread(const TensorView& v, int64_t extra, std::vector<uint8_t>* buffer) {
  TensorView w = v;
  const int64_t size = dtype_size(v.dtype);
  const int64_t slice = v.strides[0];
  w.strides[0] = slice + extra;
  buffer->assign(v.shape[0] * w.strides[0] * size, 0xff);
  for (int64_t i = 0; i < v.shape[0]; ++i) {
    std::memcpy(buffer->data() + i * w.strides[0] * size,
                static_cast<const uint8_t*>(v.data) + i * slice * size, slice * size);
  }
  w.data = buffer->data();
  return w;
}

TEST(ReferenceProperties, StridedOuterDimensionsGiveTheSameResult) {
  for (const Config& c : {kConfigs[0], kConfigs[1], kConfigs[2]}) {
    SCOPED_TRACE(describe(c));
    const gen::Batch b = gen::generate(spec_for(c));
    const Result contiguous = run(b);

    std::vector<uint8_t> q, k, v, table, out, lse;
    AttentionInputs in = b.inputs();
    in.q = spread(in.q, 64, &q);
    in.k_cache = spread(in.k_cache, 96, &k);
    in.v_cache = spread(in.v_cache, 32, &v);
    in.block_table = spread(in.block_table, 2, &table);
    Result fresh{b.make_out(), b.make_lse()};
    const TensorView out_view = spread(b.out_view(fresh.out), 16, &out);
    const TensorView lse_view = spread(b.lse_view(fresh.lse), 3, &lse);
    const Status status =
        attention(in, b.spec.options, {out_view, lse_view}, {.backend = Backend::kReference});
    ASSERT_TRUE(status.ok()) << status.message();

    const int64_t out_row = row_elems(b.spec) * dtype_size(b.spec.out_dtype);
    const int64_t lse_row = int64_t{b.spec.num_kv_heads} * b.spec.heads_per_kv * 4;
    for (int64_t t = 0; t < b.num_tokens; ++t) {
      EXPECT_EQ(std::memcmp(&out[t * out_view.strides[0] * dtype_size(b.spec.out_dtype)],
                            &contiguous.out[t * out_row], out_row),
                0)
          << "row " << t;
      EXPECT_EQ(std::memcmp(&lse[t * lse_view.strides[0] * 4],
                            reinterpret_cast<const uint8_t*>(contiguous.lse.data()) + t * lse_row,
                            lse_row),
                0)
          << "row " << t;
    }
  }
}

}  // namespace
}  // namespace rpa
