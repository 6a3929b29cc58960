#include "generate/batch.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "generate/layout.h"
#include "generate/random.h"

namespace rpa::gen {
namespace {

// Every byte of a fresh out buffer. All-ones is a NaN in f32, bf16 and f16
// alike, so an unwritten live row can never pass for a result, and no written
// value has it (the NaNs that arithmetic and the dtype conversions produce
// carry a zero low payload).
constexpr uint8_t kSentinelByte = 0xff;

// Seeds the value stream apart from the layout stream, so that the layout of a
// spec does not depend on how many values its buffers hold.
constexpr uint64_t kValueStream = 0xda7a5eed00000000ull;

template <DType kType>
void store(uint8_t* dst, float value) {
  if constexpr (kType == DType::kF32) {
    std::memcpy(dst, &value, sizeof(value));
  } else {
    const uint16_t bits = kType == DType::kBF16 ? f32_to_bf16(value) : f32_to_f16(value);
    std::memcpy(dst, &bits, sizeof(bits));
  }
}

// The top 24 of `bits` as a uniform value in [-1, 1), exactly.
float uniform_unit(uint32_t bits) {
  return static_cast<float>(static_cast<int32_t>(bits >> 8) - (1 << 23)) * 0x1p-23f;
}

// A uniform value in [-range, range), exact before the one rounding by the
// multiply, then rounded to the dtype.
template <DType kType>
void store_uniform(uint8_t* dst, uint32_t bits, float range) {
  store<kType>(dst, range * uniform_unit(bits));
}

// Fills `count` elements with uniform values; typed once per call, not per element.
template <DType kType>
void fill_uniform_typed(uint8_t* dst, int64_t count, float range, Rng& rng) {
  constexpr int64_t kSize = dtype_size(kType);
  int64_t i = 0;
  for (; i + 1 < count; i += 2) {  // two values per 64 random bits
    const uint64_t bits = rng.next();
    store_uniform<kType>(dst + i * kSize, static_cast<uint32_t>(bits >> 32), range);
    store_uniform<kType>(dst + (i + 1) * kSize, static_cast<uint32_t>(bits), range);
  }
  if (i < count)
    store_uniform<kType>(dst + i * kSize, static_cast<uint32_t>(rng.next() >> 32), range);
}

void fill_uniform(DType dtype, uint8_t* dst, int64_t count, float range, Rng& rng) {
  if (dtype == DType::kBF16) return fill_uniform_typed<DType::kBF16>(dst, count, range, rng);
  if (dtype == DType::kF16) return fill_uniform_typed<DType::kF16>(dst, count, range, rng);
  fill_uniform_typed<DType::kF32>(dst, count, range, rng);
}

void fill_nan(DType dtype, uint8_t* dst, int64_t count) {
  const float nan = std::bit_cast<float>(0x7fc00000u);
  if (dtype == DType::kF8E4M3) {
    std::memset(dst, f32_to_fp8_e4m3(nan), static_cast<size_t>(count));
    return;
  }
  if (dtype == DType::kF32) {
    for (int64_t i = 0; i < count; ++i) std::memcpy(dst + i * 4, &nan, 4);
    return;
  }
  const uint16_t bits = dtype == DType::kBF16 ? f32_to_bf16(nan) : f32_to_f16(nan);
  for (int64_t i = 0; i < count; ++i) std::memcpy(dst + i * 2, &bits, 2);
}

// Quantizes `count` uniform values in [-range, range) to fp8 at `scale`.
void fill_quantized(uint8_t* dst, int64_t count, float range, float scale, Rng& rng) {
  for (int64_t i = 0; i < count; ++i) {
    dst[i] = f32_to_fp8_e4m3(range * uniform_unit(static_cast<uint32_t>(rng.next() >> 32)) / scale);
  }
}

// Fills a [num_pages, page_size, kv_heads, head_dim] cache: the tokens a live
// slot reads get values, every other token slot NaN. A quantized cache's kv
// head h draws from [-ranges[h], ranges[h]) and is stored at scales[h].
void fill_cache(const Batch& b, const std::vector<int32_t>& live_tokens,
                const std::vector<float>& ranges, const std::vector<float>& scales, Rng& rng,
                PoolBytes* cache) {
  const BatchSpec& s = b.spec;
  const DType dtype = s.kv_dtype();
  const int64_t token_elems = int64_t{s.num_kv_heads} * s.head_dim;
  const int64_t token_bytes = token_elems * dtype_size(dtype);
  cache->resize(int64_t{b.num_pages} * s.page_size * token_bytes);
  for (int32_t page = 0; page < b.num_pages; ++page) {
    uint8_t* base = cache->data() + int64_t{page} * s.page_size * token_bytes;
    const int64_t live = live_tokens[page];
    if (s.kv_quant == KvQuant::kNone) {
      fill_uniform(dtype, base, live * token_elems, s.value_range, rng);
    } else {
      for (int64_t token = 0; token < live; ++token) {
        for (int32_t h = 0; h < s.num_kv_heads; ++h) {
          const float scale = scales[scales.size() == 1 ? 0 : h];
          fill_quantized(base + token * token_bytes + int64_t{h} * s.head_dim, s.head_dim,
                         ranges[h], scale, rng);
        }
      }
    }
    fill_nan(dtype, base + live * token_bytes, (s.page_size - live) * token_elems);
  }
}

// Per-kv-head value ranges of a quantized cache and the scales that map the
// largest of them (per head, or over all heads) onto fp8's largest value.
void quantization(const BatchSpec& s, Rng& rng, std::vector<float>* ranges,
                  std::vector<float>* scales) {
  constexpr float kFp8Max = 448.0f;
  if (s.kv_quant == KvQuant::kNone) return;
  ranges->resize(s.num_kv_heads);
  for (float& r : *ranges) r = s.value_range * static_cast<float>(1.0 + 2.0 * rng.uniform01()) / 3;
  if (s.kv_quant == KvQuant::kFp8PerHead) {
    for (float r : *ranges) scales->push_back(r / kFp8Max);
  } else {
    scales->push_back(*std::max_element(ranges->begin(), ranges->end()) / kFp8Max);
  }
}

}  // namespace

AttentionInputs Batch::inputs() const {
  const int64_t heads = spec.num_kv_heads, group = spec.heads_per_kv, dim = spec.head_dim;
  AttentionInputs in;
  in.q = TensorView::contiguous(q.data(), spec.dtype, {num_tokens, heads, group, dim});
  const DType kv = spec.kv_dtype();
  in.k_cache = TensorView::contiguous(k_cache.data(), kv, {num_pages, spec.page_size, heads, dim});
  in.v_cache = TensorView::contiguous(v_cache.data(), kv, {num_pages, spec.page_size, heads, dim});
  in.block_table = TensorView::contiguous(block_table.data(), DType::kI32,
                                          {spec.batch_capacity, max_pages_per_seq});
  in.seq_lens = TensorView::contiguous(seq_lens.data(), DType::kI32, {spec.batch_capacity});
  in.query_start_len = TensorView::contiguous(query_start_len.data(), DType::kI32,
                                              {int64_t{spec.batch_capacity} + 1});
  if (!sinks.empty()) {
    in.sinks = TensorView::contiguous(sinks.data(), DType::kF32, {heads * group});
  }
  if (!k_scale.empty()) {
    in.k_scale = TensorView::contiguous(k_scale.data(), DType::kF32, {int64_t(k_scale.size())});
    in.v_scale = TensorView::contiguous(v_scale.data(), DType::kF32, {int64_t(v_scale.size())});
  }
  return in;
}

std::vector<uint8_t> Batch::make_out() const {
  const int64_t elems = int64_t{num_tokens} * spec.num_kv_heads * spec.heads_per_kv * spec.head_dim;
  return std::vector<uint8_t>(elems * dtype_size(spec.out_dtype), kSentinelByte);
}

TensorView Batch::out_view(std::vector<uint8_t>& buffer) const {
  return TensorView::contiguous(buffer.data(), spec.out_dtype,
                                {num_tokens, spec.num_kv_heads, spec.heads_per_kv, spec.head_dim});
}

std::vector<float> Batch::make_lse() const {
  const uint32_t pattern = kSentinelByte * 0x01010101u;
  return std::vector<float>(int64_t{num_tokens} * spec.num_kv_heads * spec.heads_per_kv,
                            std::bit_cast<float>(pattern));
}

TensorView Batch::lse_view(std::vector<float>& buffer) const {
  return TensorView::contiguous(buffer.data(), DType::kF32,
                                {num_tokens, spec.num_kv_heads, spec.heads_per_kv});
}

int64_t Batch::live_rows() const { return query_start_len[spec.batch_capacity]; }

Batch generate(const BatchSpec& spec) {
  Rng layout_rng(spec.seed);
  Layout layout = make_layout(spec, layout_rng);

  Batch b;
  b.spec = spec;
  b.num_pages = layout.num_pages;
  b.max_pages_per_seq = layout.max_pages_per_seq;
  b.block_table = std::move(layout.block_table);
  b.seq_lens = std::move(layout.seq_lens);
  b.query_start_len.assign(int64_t{spec.batch_capacity} + 1, 0);
  for (int32_t s = 0; s < spec.batch_capacity; ++s) {
    b.query_start_len[s + 1] = b.query_start_len[s] + layout.q_lens[s];
  }
  b.num_tokens = static_cast<int32_t>(b.live_rows() + spec.token_padding);

  Rng rng(spec.seed ^ kValueStream);
  const int64_t row_elems = int64_t{spec.num_kv_heads} * spec.heads_per_kv * spec.head_dim;
  const int64_t live_elems = b.live_rows() * row_elems;
  b.q.resize(int64_t{b.num_tokens} * row_elems * dtype_size(spec.dtype));
  fill_uniform(spec.dtype, b.q.data(), live_elems, spec.value_range, rng);
  fill_nan(spec.dtype, b.q.data() + live_elems * dtype_size(spec.dtype),
           int64_t{spec.token_padding} * row_elems);
  std::vector<float> k_ranges, v_ranges;
  quantization(spec, rng, &k_ranges, &b.k_scale);
  quantization(spec, rng, &v_ranges, &b.v_scale);
  fill_cache(b, layout.live_tokens, k_ranges, b.k_scale, rng, &b.k_cache);
  fill_cache(b, layout.live_tokens, v_ranges, b.v_scale, rng, &b.v_cache);
  if (spec.sinks) {
    b.sinks.resize(int64_t{spec.num_kv_heads} * spec.heads_per_kv);
    for (float& sink : b.sinks) sink = static_cast<float>(4.0 * rng.uniform01() - 2.0);
  }
  return b;
}

}  // namespace rpa::gen
