// AMX-BF16 tile kernels of the bf16 decode path (decode_amx-inl.h), called
// only where cpu_features.h says AMX is usable, between amx_decode_begin()
// and amx_end() (amx_tiles.h). A key block is two runs of 16 keys, each run
// 16 rows at one byte stride: straight from a page where the run lies in
// one, else from a copy. For one kv head of G <= 8 query heads:
//   S = K Q^T:  the run's K rows are the A tile, q the B tile, one column
//               per head: s[32][Gp] f32, keys by heads (Gp = G rounded up
//               to a power of two, the columns past G zero).
//   O += P V:   the run's V rows are the B tile as they lie (the pair of an
//               element is its neighbouring dim), so P is spread over two A
//               rows per head, one multiplying the even dims, one the odd:
//               o[head_dim / 32][2 G][16] f32, row 2 h + e holding dims
//               32 c + 2 j + e of head h.
#pragma once

#include <cstdint>

namespace rpa::cpu {

inline constexpr int64_t kAmxDecodeRun = 16;      // keys per tile run
inline constexpr int64_t kAmxDecodeMaxHeads = 8;  // 2 G rows of P fit one A tile

// Loads the decode tile configuration for G = heads query heads per kv head
// and score columns padded_heads on the calling thread (amx_end releases it).
void amx_decode_begin(int64_t heads, int64_t padded_heads);

// s[n * padded_heads + j] = sum_d K[n][d] * q_j[d] for the block's 32 keys:
// keys 0-15 from k_first, 16-31 from k_second, rows *_stride bytes apart.
// qv holds q in B-tile order: per 32 dims c, 16 rows r of padded_heads
// words, word j the bf16 pair (q_j[32 c + 2 r], q_j[32 c + 2 r + 1]).
void amx_decode_scores(const uint16_t* k_first, int64_t first_stride, const uint16_t* k_second,
                       int64_t second_stride, const uint32_t* qv, int64_t head_dim,
                       int64_t padded_heads, float* s);

// The probabilities p[n * padded_heads + h] of the block's keys as the two
// runs' A tiles pa[run][2 h + e][16] (words) for h < heads: bf16 of p rounded
// to nearest even, in the low half for e = 0 and the high half for e = 1,
// zero in the other half.
void amx_decode_pack_probabilities(const float* p, int64_t heads, int64_t padded_heads,
                                   uint32_t* pa);

// Widens `count` fp8 e4m3 rows (head_dim bytes each; a null row reads as
// zeros) into bf16 rows dst[i * dst_stride + d], exactly: every e4m3 value,
// subnormals included, is a normal bf16, and the NaN codes become bf16 NaN.
// After row i it asks for row ahead[i] (head_dim bytes, into L1) unless that
// is null. Needs AVX512_VBMI (has_avx512_vbmi): a code's low 7 bits index
// two byte tables by vpermt2b.
void amx_decode_widen_fp8(const uint8_t* const* rows, int64_t count, int64_t head_dim,
                          uint16_t* dst, int64_t dst_stride, const uint8_t* const* ahead);

// o += P V for both runs: V rows of keys 0-15 from v_first, 16-31 from
// v_second, *_stride bytes apart; o as in the header comment.
void amx_decode_accumulate(const uint32_t* pa, const uint16_t* v_first, int64_t first_stride,
                           const uint16_t* v_second, int64_t second_stride, int64_t head_dim,
                           int64_t heads, float* o);

}  // namespace rpa::cpu
