// What the AMX prefill kernels (amx_tiles.cc) and the AMX peak probe
// (bench/bf16_native.cc) share: the tile configuration, and row moves of bf16
// rows into A-tile rows and of pairs of rows into B-tile order, with AVX-512
// (every AMX CPU has it). Included only by files compiled for x86 with GCC or
// clang.
#pragma once

// GCC 12's AVX-512 intrinsics build their unmasked forms from a deliberately
// undefined vector, which -Wmaybe-uninitialized reports once they are inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#define RPA_AMX_ATTR __attribute__((target("amx-tile,amx-bf16")))
#define RPA_PACK_ATTR __attribute__((target("avx512f,avx512bw")))

namespace rpa::cpu::amx {

// The 64-byte operand of ldtilecfg: palette 1, then bytes per row and rows of
// each of the 16 tile registers (8 exist).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// GCC's tile intrinsics are asm statements that do not tell the compiler
// which memory they read: without the barrier it drops the config's stores.
RPA_AMX_ATTR inline void load_config(const TileConfig& config) {
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&config);
}

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
    if (head_dim - d >= 32) _mm512_storeu_si512(dst + d + 16, _mm512_permutex2var_epi16(e, high, o));
  }
}

}  // namespace rpa::cpu::amx
