#include "cpu/amx_tiles.h"

#include <algorithm>

#include "cpu/amx_intrinsics.h"

namespace rpa::cpu {

#if defined(__x86_64__) && defined(__GNUC__)

namespace {

inline __mmask32 first_n(int64_t n) {
  return n >= 32 ? ~__mmask32{0} : (__mmask32{1} << std::max<int64_t>(n, 0)) - 1u;
}

// dst[0, padded_dim) = src[0, head_dim), then zeros; all zeros for null src.
RPA_PACK_ATTR inline void copy_row(const uint16_t* src, int64_t head_dim, int64_t padded_dim,
                                   uint16_t* dst) {
  for (int64_t d = 0; d < padded_dim; d += 32) {
    const __mmask32 valid = src != nullptr ? first_n(head_dim - d) : 0;
    _mm512_storeu_si512(dst + d, _mm512_maskz_loadu_epi16(valid, src != nullptr ? src + d : dst));
  }
}

// dst[d] = the bf16 pair (even[d], odd[d]) for d < head_dim (a multiple of
// 16); a null row reads as zeros.
RPA_PACK_ATTR inline void interleave_rows(const uint16_t* even, const uint16_t* odd,
                                          int64_t head_dim, uint32_t* dst) {
  alignas(64) static constexpr uint16_t kLow[32] = {0,  32, 1,  33, 2,  34, 3,  35, 4,  36, 5,
                                                    37, 6,  38, 7,  39, 8,  40, 9,  41, 10, 42,
                                                    11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  alignas(64) static constexpr uint16_t kHigh[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21,
                                                     53, 22, 54, 23, 55, 24, 56, 25, 57, 26, 58,
                                                     27, 59, 28, 60, 29, 61, 30, 62, 31, 63};
  const __m512i low = _mm512_load_si512(kLow);
  const __m512i high = _mm512_load_si512(kHigh);
  for (int64_t d = 0; d < head_dim; d += 32) {
    const __mmask32 valid = first_n(head_dim - d);
    const __m512i e =
        even != nullptr ? _mm512_maskz_loadu_epi16(valid, even + d) : _mm512_setzero_si512();
    const __m512i o =
        odd != nullptr ? _mm512_maskz_loadu_epi16(valid, odd + d) : _mm512_setzero_si512();
    _mm512_storeu_si512(dst + d, _mm512_permutex2var_epi16(e, low, o));
    if (head_dim - d >= 32) {
      _mm512_storeu_si512(dst + d + 16, _mm512_permutex2var_epi16(e, high, o));
    }
  }
}

// Transposes 16 x 16 32-bit elements in place: rows[c] holds element c of
// every input row afterwards. 32-bit, then 64-bit interleaves leave 4 x 4
// blocks transposed inside each 128-bit lane; two 128-bit shuffles gather them.
RPA_PACK_ATTR void transpose16x16(__m512i rows[16]) {
  __m512i a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_epi32(rows[2 * i], rows[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_epi32(rows[2 * i], rows[2 * i + 1]);
  }
  // b[4 i + e] holds, in 128-bit lane L, element 4 L + e of rows 4 i .. 4 i + 3.
  for (int i = 0; i < 4; ++i) {
    b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
    b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
    b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
  }
  for (int e = 0; e < 4; ++e) {
    const __m512i even_lanes01 = _mm512_shuffle_i32x4(b[e], b[4 + e], 0x88);
    const __m512i odd_lanes01 = _mm512_shuffle_i32x4(b[e], b[4 + e], 0xDD);
    const __m512i even_lanes23 = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], 0x88);
    const __m512i odd_lanes23 = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], 0xDD);
    rows[e] = _mm512_shuffle_i32x4(even_lanes01, even_lanes23, 0x88);
    rows[8 + e] = _mm512_shuffle_i32x4(even_lanes01, even_lanes23, 0xDD);
    rows[4 + e] = _mm512_shuffle_i32x4(odd_lanes01, odd_lanes23, 0x88);
    rows[12 + e] = _mm512_shuffle_i32x4(odd_lanes01, odd_lanes23, 0xDD);
  }
}

// f32 bits rounded to nearest even at bf16 precision: the bf16 is the high half.
RPA_PACK_ATTR inline __m512i round_to_bf16(__m512i bits) {
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  return _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd));
}

}  // namespace

RPA_AMX_ATTR void amx_begin() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = kRowBytes;
    config.rows[t] = 16;
  }
  // GCC's tile intrinsics are asm statements that do not tell the compiler
  // which memory they read: without the barrier it drops the config's stores.
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&config);
}

RPA_AMX_ATTR void amx_end() { _tile_release(); }

// Per 16 lanes and 32 dims: the lanes' 16 bf16 pairs each, one row per
// lane, transposed into 16 rows of one pair per lane.
RPA_PACK_ATTR void amx_pack_queries(const uint16_t* qa, int64_t lanes, int64_t padded_dim,
                                    uint32_t* qv) {
  const int64_t blocks = padded_dim / kAmxDims;
  for (int64_t g = 0; g < lanes / 16; ++g) {
    for (int64_t b = 0; b < blocks; ++b) {
      __m512i rows[16];
      for (int64_t i = 0; i < 16; ++i) {
        rows[i] = _mm512_loadu_si512(qa + (g * 16 + i) * padded_dim + b * kAmxDims);
      }
      transpose16x16(rows);
      uint32_t* out = qv + (g * blocks + b) * 16 * 16;
      for (int r = 0; r < 16; ++r) _mm512_storeu_si512(out + r * 16, rows[r]);
    }
  }
}

RPA_PACK_ATTR void amx_copy_keys(const uint16_t* const* k, int64_t count, int64_t head_dim,
                                 int64_t padded_dim, uint16_t* kc) {
  for (int64_t n = 0; n < kAmxKeys; ++n) {
    copy_row(n < count ? k[n] : nullptr, head_dim, padded_dim, kc + n * padded_dim);
  }
}

// Per key pair and 32 dims: two rows of 32 bf16 interleaved into 32 pairs.
RPA_PACK_ATTR void amx_pack_values(const uint16_t* const* v, int64_t count, int64_t head_dim,
                                   uint32_t* vt) {
  for (int64_t p = 0; p < kAmxKeys / 2; ++p) {
    interleave_rows(2 * p < count ? v[2 * p] : nullptr,
                         2 * p + 1 < count ? v[2 * p + 1] : nullptr, head_dim, vt + p * head_dim);
  }
}

// Passes of 32 keys, up to the block's last. Tiles 0-3 hold S^T for (16
// keys, 16 lanes) of the pass's two key groups and the block's two lane
// halves; 4 and 5 the key groups' rows, 6 and 7 the halves' q, 32 dims at a
// time.
RPA_AMX_ATTR void amx_scores(const uint16_t* kc, const uint32_t* qv, int64_t padded_dim,
                             int64_t keys, float* st) {
  const int64_t k_stride = padded_dim * 2;
  const int64_t blocks = padded_dim / kAmxDims;
  const uint32_t* qv_second = qv + blocks * 16 * 16;
  constexpr int64_t st_stride = 32 * 4;
  for (int64_t pass = 0; pass * 32 < keys; ++pass) {
    const uint16_t* k0 = kc + pass * 32 * padded_dim;
    const uint16_t* k1 = k0 + 16 * padded_dim;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t b = 0; b < blocks; ++b) {
      _tile_loadd(4, k0 + b * kAmxDims, k_stride);
      _tile_loadd(6, qv + b * 256, kRowBytes);
      _tile_dpbf16ps(0, 4, 6);
      _tile_loadd(7, qv_second + b * 256, kRowBytes);
      _tile_dpbf16ps(1, 4, 7);
      _tile_loadd(5, k1 + b * kAmxDims, k_stride);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    float* out = st + pass * 32 * 32;
    _tile_stored(0, out, st_stride);
    _tile_stored(1, out + 16, st_stride);
    _tile_stored(2, out + 16 * 32, st_stride);
    _tile_stored(3, out + 16 * 32 + 16, st_stride);
  }
}

// Half by half: tiles 2-5 hold the half's P (its four 32-key A tiles); per
// pair of 16-dim columns, their o blocks are loaded into tiles 0 and 1, take
// the four key groups' products (V in tiles 6 and 7) and are stored back.
// Tile numbers are immediates, so the groups are spelled out one by one.
static_assert(kAmxKeys == 4 * 32, "amx_accumulate names one P tile per 32 keys");
RPA_AMX_ATTR void amx_accumulate(const uint16_t* p, const uint32_t* vt, int64_t head_dim,
                                 int64_t keys, float* o) {
  constexpr int64_t p_stride = kAmxKeys * 2;
  const int64_t stride = head_dim * 4;  // of o's rows and of V's pair rows
  const int64_t group = 16 * head_dim;  // 16 pairs: one 32-key group of V
  const int64_t groups = (keys + 31) / 32;
  for (int64_t half = 0; half < 2; ++half) {
    const uint16_t* ph = p + half * kAmxLanes * kAmxKeys;
    float* oh = o + half * kAmxLanes * head_dim;
    _tile_loadd(2, ph, p_stride);
    if (groups > 1) _tile_loadd(3, ph + 32, p_stride);
    if (groups > 2) _tile_loadd(4, ph + 64, p_stride);
    if (groups > 3) _tile_loadd(5, ph + 96, p_stride);
    // The 16-dim columns from c on, two at a time (the last may be alone).
    for (int64_t c = 0; c < head_dim; c += 32) {
      const bool pair = c + 32 <= head_dim;
      _tile_loadd(0, oh + c, stride);
      if (pair) _tile_loadd(1, oh + c + 16, stride);
      _tile_loadd(6, vt + c, stride);
      _tile_dpbf16ps(0, 2, 6);
      if (pair) {
        _tile_loadd(7, vt + c + 16, stride);
        _tile_dpbf16ps(1, 2, 7);
      }
      if (groups > 1) {
        _tile_loadd(6, vt + group + c, stride);
        _tile_dpbf16ps(0, 3, 6);
        if (pair) {
          _tile_loadd(7, vt + group + c + 16, stride);
          _tile_dpbf16ps(1, 3, 7);
        }
      }
      if (groups > 2) {
        _tile_loadd(6, vt + 2 * group + c, stride);
        _tile_dpbf16ps(0, 4, 6);
        if (pair) {
          _tile_loadd(7, vt + 2 * group + c + 16, stride);
          _tile_dpbf16ps(1, 4, 7);
        }
      }
      if (groups > 3) {
        _tile_loadd(6, vt + 3 * group + c, stride);
        _tile_dpbf16ps(0, 5, 6);
        if (pair) {
          _tile_loadd(7, vt + 3 * group + c + 16, stride);
          _tile_dpbf16ps(1, 5, 7);
        }
      }
      _tile_stored(0, oh + c, stride);
      if (pair) _tile_stored(1, oh + c + 16, stride);
    }
  }
}

// Per 32 keys: the 16 key pairs of the half's lanes as bf16 pairs, one vector
// per pair, transposed into one row of 16 pairs per lane.
RPA_PACK_ATTR void amx_pack_probabilities(const float* st, int64_t first, int64_t end,
                                          int64_t half, uint16_t* p) {
  const __m512i high_half = _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  for (int64_t group = 0; group * 32 < end; ++group) {
    __m512i pairs[16];
    for (int64_t i = 0; i < 16; ++i) {
      const int64_t n = group * 32 + 2 * i;
      const __m512i even = n >= first && n < end
                               ? round_to_bf16(_mm512_loadu_si512(st + n * 32 + half * 16))
                               : _mm512_setzero_si512();
      const __m512i odd = n + 1 >= first && n + 1 < end
                              ? round_to_bf16(_mm512_loadu_si512(st + (n + 1) * 32 + half * 16))
                              : _mm512_setzero_si512();
      pairs[i] = _mm512_or_si512(_mm512_srli_epi32(even, 16), _mm512_and_si512(odd, high_half));
    }
    transpose16x16(pairs);
    for (int64_t lane = 0; lane < 16; ++lane) {
      _mm512_storeu_si512(p + lane * kAmxKeys + group * 32, pairs[lane]);
    }
  }
}

#else

void amx_pack_queries(const uint16_t*, int64_t, int64_t, uint32_t*) {}
void amx_pack_probabilities(const float*, int64_t, int64_t, int64_t, uint16_t*) {}
void amx_pack_values(const uint16_t* const*, int64_t, int64_t, uint32_t*) {}
void amx_copy_keys(const uint16_t* const*, int64_t, int64_t, int64_t, uint16_t*) {}
void amx_begin() {}
void amx_end() {}
void amx_scores(const uint16_t*, const uint32_t*, int64_t, int64_t, float*) {}
void amx_accumulate(const uint16_t*, const uint32_t*, int64_t, int64_t, float*) {}

#endif

}  // namespace rpa::cpu
