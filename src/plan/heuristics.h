// Tile and chunk sizes: pure functions, each number with its reason. Every
// size depends only on the call's shapes (never on the batch's contents), so a
// sequence is cut the same way whatever else is in the batch (docs/contract.md §5).
#pragma once

#include <algorithm>
#include <cstdint>

namespace rpa::heuristics {

// Query rows × heads_per_kv of a prefill tile fill 256 lanes. Every tile
// re-reads (and on the CPU widens or packs) the K/V of all the keys it sees,
// so a taller tile reads less per flop: on the 2-core AMX Xeon, 256 lanes
// against 128 ran prefill-f32 7% faster, bf16 prefill 12% and prefill-chunk
// 15% (512 lanes: 6-13% more again; docs/benchmarks.md, session 11). The
// cost is parallelism: a lone 512-token prompt at GQA 4 with 8 kv heads
// makes 64 chains, enough for 64 cores, where 512 lanes would make 32. The
// tile's f32 o and q (128 KiB each at head_dim 128) stay in a 512 KiB+ L2.
// (The Neuron tables fill the 128 SBUF partitions instead: device_tables.cc.)
inline constexpr int64_t kTileLanes = 256;

// A slot long enough to fill kTallTilesPerSlot tiles of 512 lanes gets them:
// its chains stay 8 per kv head or more (64 at 8 kv heads, a lone 1024-token
// prompt at GQA 4), and the bf16 prefill ran 3-8% faster than on 256-lane
// tiles (docs/benchmarks.md, session 12). Shorter slots keep kTileLanes, for
// their parallelism. The slot's own q_len decides, never the rest of the
// batch (docs/contract.md §5).
inline constexpr int64_t kTallTileLanes = 512;
inline constexpr int64_t kTallTilesPerSlot = 8;

constexpr int32_t q_tile_rows(int64_t heads_per_kv) {
  return static_cast<int32_t>(std::max<int64_t>(1, kTileLanes / std::max<int64_t>(1, heads_per_kv)));
}

// The CPU default's rows per tile of a prefill slot of q_len rows.
constexpr int32_t slot_q_tile_rows(int64_t heads_per_kv, int64_t q_len) {
  const int64_t heads = std::max<int64_t>(1, heads_per_kv);
  const bool tall = q_len * heads >= kTallTileLanes * kTallTilesPerSlot;
  return static_cast<int32_t>(std::max<int64_t>(1, (tall ? kTallTileLanes : kTileLanes) / heads));
}

// Keys per item: 512 keys of one kv head are 128 KiB of K+V at head_dim 128 in
// bf16, a comfortable L2 working set per core; a multiple of every supported
// page size, so items never split a page.
inline constexpr int32_t kKvChunkTokens = 512;

constexpr int32_t kv_chunk_tokens(int64_t page_size) {
  return static_cast<int32_t>(std::max<int64_t>(page_size, kKvChunkTokens));
}

// Keys per split chain (flash-decoding). A fixed, batch-independent cut keeps
// results invariant to batch composition; 2048 keys give a decode row of 8192
// context 4 chains per kv head, enough to keep 16+ cores busy with a single
// sequence, while the merge touches only (head_dim + 2) floats per 2048 keys.
// A slot of T prefill tiles splits at T times this (plan.h): its tiles
// already make chains enough.
inline constexpr int32_t kSplitChunks = 4;

constexpr int32_t split_tokens(int32_t kv_chunk) { return kv_chunk * kSplitChunks; }

// The cuda backend's sizes (src/cuda): about 64 packed rows per prefill tile,
// one CTA's Q tile (cuda/prefill.cuh); 1024-key splits give a 32k-token
// decode row 32 CTAs per kv head, while a split's partial costs (head_dim + 2)
// floats per 1024 keys. A split is one item: the kernels walk a chain's keys
// in blocks of their own across items, so smaller items would only cost
// planning time on the host, which is paid per call (about 60 ns an item).
// Pure, so every build can plan for it.
constexpr int32_t cuda_q_tile_rows(int64_t heads_per_kv) {
  return static_cast<int32_t>(std::max<int64_t>(1, 64 / std::max<int64_t>(1, heads_per_kv)));
}
constexpr int32_t cuda_kv_chunk_tokens(int64_t page_size) {
  return static_cast<int32_t>(std::max<int64_t>(page_size, 1024));
}
constexpr int32_t cuda_split_tokens(int64_t page_size) { return cuda_kv_chunk_tokens(page_size); }

}  // namespace rpa::heuristics
