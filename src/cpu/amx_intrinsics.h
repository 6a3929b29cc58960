// What the AMX kernels (amx_tiles.cc, amx_decode_tiles.cc) share: the x86
// intrinsics with their per-function target attributes, and the operand of
// ldtilecfg. Included by those two .cc files only.
#pragma once

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics build their unmasked forms from a deliberately
// undefined vector, which -Wmaybe-uninitialized reports once they are inlined.
// (Clang, which the fuzz and tsan presets use, has no such warning group.)
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#define RPA_AMX_ATTR __attribute__((target("amx-tile,amx-bf16")))
#define RPA_PACK_ATTR __attribute__((target("avx512f,avx512bw")))
#define RPA_VBMI_ATTR __attribute__((target("avx512f,avx512bw,avx512vbmi")))

namespace rpa::cpu {

inline constexpr int64_t kRowBytes = 64;  // the longest tile row

// The 64-byte operand of ldtilecfg: palette 1, then bytes per row and rows of
// each of the 16 tile registers (8 exist).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

}  // namespace rpa::cpu
#endif
