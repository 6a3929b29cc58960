// AMX-BF16 tile kernels of the bf16 prefill path (prefill_amx-inl.h), called
// only where cpu_features.h says AMX is usable. A 32-lane m-block of a Q tile
// (two 16-lane halves) meets a chunk of kAmxKeys keys:
//   S^T = K Q^T: st[kAmxKeys][32] f32, keys by lanes, the layout of the
//                vertical online softmax (prefill-inl.h's BlockSoftmax): from
//                the chunk's K rows and the tile's q in B-tile order;
//   O += P V:    o[32][head_dim] f32 in place, from each half's P as A-tile
//                rows p[16][kAmxKeys] bf16 and the chunk's V in B-tile order.
// bf16 rows are zero-padded to a multiple of 32 dims where an A tile's row
// needs it. Every tile is 16 rows of 64 bytes: one configuration serves all.
#pragma once

#include <cstdint>

namespace rpa::cpu {

inline constexpr int64_t kAmxLanes = 16;  // rows of an A or C tile
// Keys per chunk: S in passes of 32 keys (four C tiles); P V with one half's
// four 32-key A tiles of P against each o block loaded into a tile, so that o
// makes one trip from cache to tile and back per 128 keys, not per 64: with
// the tile products taken out the prefill ran only 10% faster, so the o
// traffic, not the products, bound it (bf16 prefill 7-11% faster;
// docs/benchmarks.md, session 12). A block's passes and groups stop at its
// last visible key.
inline constexpr int64_t kAmxKeys = 128;
inline constexpr int64_t kAmxDims = 32;   // bf16 dims per A tile row (64 bytes)

constexpr int64_t amx_padded_dim(int64_t head_dim) {
  return (head_dim + kAmxDims - 1) / kAmxDims * kAmxDims;
}

// Loads the tile configuration on the calling thread / releases its tiles.
void amx_begin();
void amx_end();

// The tile's q rows qa[lanes][padded_dim] (lanes a multiple of 16) as B
// tiles of K Q^T: per 16 lanes g and 32 dims b, 16 rows (dim pairs) of 16
// lanes, qv[((g * padded_dim / 32 + b) * 16 + r) * 16 + lane] = the pair of
// dims 32 b + 2 r, +1 of lane 16 g + lane.
void amx_pack_queries(const uint16_t* qa, int64_t lanes, int64_t padded_dim, uint32_t* qv);

// K rows of a chunk, keys n < count, as A-tile rows kc[kAmxKeys][padded_dim]
// (zero past head_dim and for n >= count).
void amx_copy_keys(const uint16_t* const* k, int64_t count, int64_t head_dim, int64_t padded_dim,
                   uint16_t* kc);

// V rows of a chunk, keys n < count (the rest zero), as B tiles of P V:
// vt[p * head_dim + d] holds the pair (V[2 p][d], V[2 p + 1][d]).
// kAmxKeys / 2 * head_dim pairs.
void amx_pack_values(const uint16_t* const* v, int64_t count, int64_t head_dim, uint32_t* vt);

// st[n * 32 + j] = sum_d K[n][d] * q_j[d] for the 32 lanes of one m-block,
// whose q is qv from its first lane's 16-lane group on, and the chunk's keys
// n < keys rounded up to 32 (the block sees none past them).
void amx_scores(const uint16_t* kc, const uint32_t* qv, int64_t padded_dim, int64_t keys,
                float* st);

// The probabilities st[n * 32 + 16 * half + i] of keys n in [first, end) as
// A-tile rows p[i * kAmxKeys + n], rounded to bf16 to nearest even; 0 for
// the chunk's other keys before end rounded up to 32 (whose st rows the
// softmax did not touch); the 32-key groups past it are not written.
void amx_pack_probabilities(const float* st, int64_t first, int64_t end, int64_t half,
                            uint16_t* p);

// For both halves of an m-block, o[i * head_dim + d] += sum_n p[i * kAmxKeys
// + n] * V[n][d] for i < 32 and keys n < keys rounded up to 32: p holds the
// halves' A tiles one after the other (p[16][kAmxKeys], then the second
// half's), o the block's 32 rows.
void amx_accumulate(const uint16_t* p, const uint32_t* vt, int64_t head_dim, int64_t keys,
                    float* o);

}  // namespace rpa::cpu
