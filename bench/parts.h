// The decode part and the prefill part of a mixed batch, for timing each alone
// against the whole (docs/benchmarks.md, "mixed"). A part is the same batch
// (same q, pool, pages and block table) with the slots of the other kind made
// inactive by a seq_len of 0, which the contract allows whatever a slot's q_len
// (docs/contract.md §1): rows stay where they are, so a part's output rows can be compared
// with the whole batch's row for row, and the part's call costs only its slots.
#pragma once

#include <cstdint>
#include <vector>

#include "generate/batch.h"

namespace rpa::bench {

enum class Part {
  kDecode,   // slots with q_len == 1
  kPrefill,  // slots with q_len > 1: chunked prefill and fresh prompts
};

class BatchPart {
 public:
  // `batch` must outlive the part: its buffers are viewed, not copied.
  BatchPart(const gen::Batch& batch, Part part);

  // batch.inputs() with this part's seq_lens.
  AttentionInputs inputs() const;
  const std::vector<int32_t>& seq_lens() const { return seq_lens_; }

 private:
  const gen::Batch* batch_;
  std::vector<int32_t> seq_lens_;  // batch.seq_lens, 0 for the other part's slots
};

}  // namespace rpa::bench
