#include "cpu/amx_decode_tiles.h"

#include <bit>

#include "cpu/amx_intrinsics.h"
#include "rpa/dtype.h"

namespace rpa::cpu {

#if defined(__x86_64__) && defined(__GNUC__)

constexpr int64_t kDims = 32;  // bf16 dims per 64-byte tile row

// The tiles, one role each; GCC's tile intrinsics paste the tile number into
// the instruction, hence the literal numbers below. 0: a run's K rows (A),
// 1: q (B), 2 and 3: the runs' scores (C), 4 and 5: the runs' P (A), 6: a
// run's V rows (B), 7: a 32-dim block of o (C). Narrow tiles (G columns, 2 G
// rows) keep q, s and o small: with square ones decode-long ran 7% slower.
RPA_AMX_ATTR void amx_decode_begin(int64_t heads, int64_t padded_heads) {
  TileConfig config;
  const auto set = [&](int tile, int64_t rows, int64_t bytes) {
    config.rows[tile] = static_cast<uint8_t>(rows);
    config.bytes_per_row[tile] = static_cast<uint16_t>(bytes);
  };
  set(0, kAmxDecodeRun, kRowBytes);
  set(1, kAmxDecodeRun, 4 * padded_heads);
  set(2, kAmxDecodeRun, 4 * padded_heads);
  set(3, kAmxDecodeRun, 4 * padded_heads);
  set(4, 2 * heads, kRowBytes);
  set(5, 2 * heads, kRowBytes);
  set(6, kAmxDecodeRun, kRowBytes);
  set(7, 2 * heads, kRowBytes);
  // GCC's tile intrinsics do not tell it which memory they read (amx_tiles.cc).
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&config);
}

RPA_AMX_ATTR void amx_decode_scores(const uint16_t* k_first, int64_t first_stride,
                                    const uint16_t* k_second, int64_t second_stride,
                                    const uint32_t* qv, int64_t head_dim, int64_t padded_heads,
                                    float* s) {
  const int64_t q_bytes = 4 * padded_heads;
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t c = 0; c < head_dim / kDims; ++c) {
    _tile_loadd(1, qv + c * kAmxDecodeRun * padded_heads, q_bytes);
    _tile_loadd(0, k_first + c * kDims, first_stride);
    _tile_dpbf16ps(2, 0, 1);
    _tile_loadd(0, k_second + c * kDims, second_stride);
    _tile_dpbf16ps(3, 0, 1);
  }
  _tile_stored(2, s, q_bytes);
  _tile_stored(3, s + kAmxDecodeRun * padded_heads, q_bytes);
}

RPA_PACK_ATTR void amx_decode_pack_probabilities(const float* p, int64_t heads,
                                                 int64_t padded_heads, uint32_t* pa) {
  const __m512i keys =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int32_t>(padded_heads)));
  const __m512i high_half = _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i bias = _mm512_set1_epi32(0x7FFF);
  for (int64_t run = 0; run < 2; ++run) {
    const float* base = p + run * kAmxDecodeRun * padded_heads;
    uint32_t* rows = pa + run * 2 * heads * kAmxDecodeRun;
    for (int64_t h = 0; h < heads; ++h) {
      const __m512i index = _mm512_add_epi32(keys, _mm512_set1_epi32(static_cast<int32_t>(h)));
      const __m512i bits = _mm512_castps_si512(_mm512_i32gather_ps(index, base, 4));
      const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
      const __m512i rounded =
          _mm512_and_si512(_mm512_add_epi32(bits, _mm512_add_epi32(bias, odd)), high_half);
      _mm512_storeu_si512(rows + (2 * h) * kAmxDecodeRun, _mm512_srli_epi32(rounded, 16));
      _mm512_storeu_si512(rows + (2 * h + 1) * kAmxDecodeRun, rounded);
    }
  }
}

namespace {

// The bf16 of e4m3 code c (its low 7 bits; the sign is copied apart), split
// into its low bytes and its high bytes: [0] for codes 0-63, [1] for 64-127,
// as vpermt2b's two tables.
struct alignas(64) Fp8ToBf16Bytes {
  uint8_t low[2][64];
  uint8_t high[2][64];
  uint8_t order[64];  // vpermb's index before the unpacks (below)
};

constexpr Fp8ToBf16Bytes make_fp8_to_bf16_bytes() {
  Fp8ToBf16Bytes t{};
  for (int c = 0; c < 128; ++c) {
    // Exact: e4m3 has 4 significant bits and its range sits inside bf16's.
    const uint32_t bits = std::bit_cast<uint32_t>(fp8_e4m3_to_f32(static_cast<uint8_t>(c)));
    t.low[c / 64][c % 64] = static_cast<uint8_t>(bits >> 16);
    t.high[c / 64][c % 64] = static_cast<uint8_t>(bits >> 24);
  }
  // The bytes' unpack interleaves within 16-byte lanes: lane L's first 8
  // words come from bytes 16 L..16 L + 7, its last 8 from 16 L + 8..16 L + 15.
  // Moving codes 8 L + j there (and 32 + 8 L + j to the second half) makes
  // the two unpacks yield elements 0-31 and 32-63 in order.
  for (int lane = 0; lane < 4; ++lane) {
    for (int j = 0; j < 8; ++j) {
      t.order[16 * lane + j] = static_cast<uint8_t>(8 * lane + j);
      t.order[16 * lane + 8 + j] = static_cast<uint8_t>(32 + 8 * lane + j);
    }
  }
  return t;
}

constexpr Fp8ToBf16Bytes kFp8ToBf16 = make_fp8_to_bf16_bytes();

}  // namespace

RPA_VBMI_ATTR void amx_decode_widen_fp8(const uint8_t* const* rows, int64_t count, int64_t head_dim,
                                        uint16_t* dst, int64_t dst_stride,
                                        const uint8_t* const* ahead) {
  const __m512i low0 = _mm512_load_si512(kFp8ToBf16.low[0]);
  const __m512i low1 = _mm512_load_si512(kFp8ToBf16.low[1]);
  const __m512i high0 = _mm512_load_si512(kFp8ToBf16.high[0]);
  const __m512i high1 = _mm512_load_si512(kFp8ToBf16.high[1]);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i order = _mm512_load_si512(kFp8ToBf16.order);
  for (int64_t i = 0; i < count; ++i) {
    uint16_t* out = dst + i * dst_stride;
    if (ahead[i] != nullptr) {
      for (int64_t b = 0; b < head_dim; b += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead[i] + b), _MM_HINT_T0);
      }
    }
    if (rows[i] == nullptr) {
      for (int64_t d = 0; d < head_dim; d += 32)
        _mm512_storeu_si512(out + d, _mm512_setzero_si512());
      continue;
    }
    const uint8_t* row = rows[i];
    for (int64_t d = 0; d < head_dim; d += 64) {
      const bool whole = d + 64 <= head_dim;  // else a 32-byte tail (head_dim 96, 160)
      const __m512i raw = whole ? _mm512_loadu_si512(row + d)
                                : _mm512_zextsi256_si512(_mm256_loadu_si256(
                                      reinterpret_cast<const __m256i*>(row + d)));
      const __m512i codes = _mm512_permutexvar_epi8(order, raw);
      const __m512i low = _mm512_permutex2var_epi8(low0, codes, low1);
      // high | (codes & 0x80): the sign bit of bf16 is the code's.
      const __m512i high = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(high0, codes, high1),
                                                     codes, sign, 0xF8);
      _mm512_storeu_si512(out + d, _mm512_unpacklo_epi8(low, high));
      if (whole) _mm512_storeu_si512(out + d + 32, _mm512_unpackhi_epi8(low, high));
    }
  }
}

RPA_AMX_ATTR void amx_decode_accumulate(const uint32_t* pa, const uint16_t* v_first,
                                        int64_t first_stride, const uint16_t* v_second,
                                        int64_t second_stride, int64_t head_dim, int64_t heads,
                                        float* o) {
  _tile_loadd(4, pa, kRowBytes);
  _tile_loadd(5, pa + 2 * heads * kAmxDecodeRun, kRowBytes);
  for (int64_t c = 0; c < head_dim / kDims; ++c) {
    float* oc = o + c * 2 * heads * kAmxDecodeRun;
    _tile_loadd(7, oc, kRowBytes);
    _tile_loadd(6, v_first + c * kDims, first_stride);
    _tile_dpbf16ps(7, 4, 6);
    _tile_loadd(6, v_second + c * kDims, second_stride);
    _tile_dpbf16ps(7, 5, 6);
    _tile_stored(7, oc, kRowBytes);
  }
}

#else

void amx_decode_scores(const uint16_t*, int64_t, const uint16_t*, int64_t, const uint32_t*, int64_t,
                       int64_t, float*) {}
void amx_decode_pack_probabilities(const float*, int64_t, int64_t, uint32_t*) {}
void amx_decode_begin(int64_t, int64_t) {}
void amx_decode_accumulate(const uint32_t*, const uint16_t*, int64_t, const uint16_t*, int64_t,
                           int64_t, int64_t, float*) {}
void amx_decode_widen_fp8(const uint8_t* const*, int64_t, int64_t, uint16_t*, int64_t,
                          const uint8_t* const*) {}

#endif

}  // namespace rpa::cpu
