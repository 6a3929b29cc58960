// AMX-BF16 tile kernels of the bf16 prefill path (prefill_amx-inl.h), called
// only where cpu_features.h says AMX is usable. One 16-lane block of a Q tile
// meets one chunk of kAmxKeys keys:
//   S = Q K^T:  s[16][kAmxKeys] f32 from the block's q rows (bf16, zero-padded
//               to a multiple of 32 dims) and the chunk's K in B-tile order;
//   O += P V:   o[16][head_dim] f32 in place, from p[16][kAmxKeys] bf16 and
//               the chunk's V in B-tile order.
// Every tile is 16 rows of 64 bytes: one configuration serves both products.
#pragma once

#include <cstdint>

namespace rpa::cpu {

inline constexpr int64_t kAmxLanes = 16;  // rows of an A or C tile
inline constexpr int64_t kAmxKeys = 64;   // keys per chunk: four 16-key C tiles of S
inline constexpr int64_t kAmxDims = 32;   // bf16 dims per A tile row (64 bytes)

constexpr int64_t amx_padded_dim(int64_t head_dim) {
  return (head_dim + kAmxDims - 1) / kAmxDims * kAmxDims;
}

// Loads the tile configuration on the calling thread / releases its tiles.
void amx_begin();
void amx_end();

// K rows of a chunk, keys n < count (the rest zero), as B tiles of Q K^T:
// kt[((b * 4 + j) * 16 + r) * 16 + c] holds, as one 32-bit bf16 pair, dims
// 32 b + 2 r and 32 b + 2 r + 1 of key 16 j + c. padded_dim / 2 * kAmxKeys pairs.
void amx_pack_keys(const uint16_t* const* k, int64_t count, int64_t head_dim, int64_t padded_dim,
                   uint32_t* kt);

// V rows of a chunk, keys n < count (the rest zero), as B tiles of P V:
// vt[p * head_dim + d] holds the pair (V[2 p][d], V[2 p + 1][d]).
// kAmxKeys / 2 * head_dim pairs.
void amx_pack_values(const uint16_t* const* v, int64_t count, int64_t head_dim, uint32_t* vt);

// s[i * kAmxKeys + n] = sum_d q[i * padded_dim + d] * K[n][d] for i < 16.
void amx_scores(const uint16_t* q, const uint32_t* kt, int64_t padded_dim, float* s);

// o[i * head_dim + d] += sum_n p[i * kAmxKeys + n] * V[n][d] for i < 16.
void amx_accumulate(const uint16_t* p, const uint32_t* vt, int64_t head_dim, float* o);

}  // namespace rpa::cpu
