// The structure of a generated batch, before any value is drawn: what each slot
// holds, and which physical page holds each live logical page.
#pragma once

#include <cstdint>
#include <vector>

#include "generate/batch.h"
#include "generate/random.h"

namespace rpa::gen {

struct Layout {
  std::vector<int32_t> q_lens;    // [batch_capacity]
  std::vector<int32_t> seq_lens;  // [batch_capacity]
  int32_t max_pages_per_seq = 0;
  int32_t num_pages = 0;
  // [batch_capacity, max_pages_per_seq] physical pages; entries past a slot's
  // live pages already hold -1 or out-of-range garbage.
  std::vector<int32_t> block_table;
  // [num_pages] how many leading tokens of each physical page an active slot
  // reads; the rest of the page is dead and gets NaN.
  std::vector<int32_t> live_tokens;
};

// Throws std::invalid_argument naming the field when `spec` cannot be generated.
Layout make_layout(const BatchSpec& spec, Rng& rng);

}  // namespace rpa::gen
