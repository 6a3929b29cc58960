// The key blocks of a decode task: its keys in runs of at most kDecodeKeys,
// each resolved to its K and V rows. Plain code, shared by the decode paths
// of every target (decode-inl.h) and the AMX one (decode_amx-inl.h).
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/call.h"

namespace rpa::cpu {

// Keys per online-softmax step: scores of a block are computed, the state is
// rescaled once, then the block's V rows are accumulated. 32 amortizes the
// per-block reductions, exps and rescale of o (16 measured 3% slower).
inline constexpr int kDecodeKeys = 32;

// One block of at most kDecodeKeys keys of a decode task: the K and V rows of
// kv head 0 of each key (kv head h's are h rows further), and the index in its
// chain of the item the keys belong to.
template <typename T>
struct KeyBlock {
  int32_t item = 0;
  int count = 0;
  const T* k[kDecodeKeys];
  const T* v[kDecodeKeys];
};

// Walks the key blocks of a decode task in order. Every chain of a task reads
// the same keys of the same items (call.cc), so one walk over the first
// chain's items serves them all.
template <typename T>
class KeyBlocks {
 public:
  KeyBlocks(const CpuCall& call, const Chain& chain, int64_t lo, int64_t hi)
      : call_(call),
        chain_(chain),
        lo_(lo),
        hi_(hi),
        cursor_(*call.plan, chain.items[0], chain.items[0].kv_begin) {}

  // Fills `block` with the next block; false once every key has been walked.
  bool next(KeyBlock<T>* block) {
    while (key_ >= end_) {
      if (++item_ >= chain_.count) return false;
      const WorkItem& item = chain_.items[item_];
      key_ = std::max<int64_t>(item.kv_begin, lo_);
      end_ = std::min<int64_t>(item.kv_end, hi_);
      if (key_ < end_) cursor_ = KeyCursor(*call_.plan, item, key_);
    }
    block->item = item_;
    block->count = static_cast<int>(std::min<int64_t>(kDecodeKeys, end_ - key_));
    for (int n = 0; n < block->count; ++n, cursor_.next()) {
      block->k[n] = call_.k_cache.row<const T>(cursor_.page(), cursor_.slot(), 0);
      block->v[n] = call_.v_cache.row<const T>(cursor_.page(), cursor_.slot(), 0);
    }
    key_ += block->count;
    return true;
  }

 private:
  const CpuCall& call_;
  const Chain& chain_;
  int64_t lo_, hi_;
  int32_t item_ = -1;
  int64_t key_ = 0, end_ = 0;
  KeyCursor cursor_;
};

}  // namespace rpa::cpu
