#include "generate/layout.h"

#include <algorithm>
#include <climits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace rpa::gen {
namespace {

// With max_pages_per_seq = 0, each block-table row gets this many entries past
// the longest slot's pages, so that every row has dead entries to poison.
constexpr int32_t kExtraPagesPerSeq = 3;

[[noreturn]] void bad_spec(const std::string& what) {
  throw std::invalid_argument("BatchSpec: " + what);
}

void check_spec(const BatchSpec& s) {
  if (s.num_kv_heads <= 0 || s.heads_per_kv <= 0 || s.head_dim <= 0 || s.page_size <= 0) {
    bad_spec("num_kv_heads, heads_per_kv, head_dim and page_size must be positive");
  }
  if (s.batch_capacity <= 0) bad_spec("batch_capacity must be positive");
  if (s.token_padding < 0 || s.spare_pages < 0 || s.max_pages_per_seq < 0) {
    bad_spec("token_padding, spare_pages and max_pages_per_seq must be >= 0");
  }
  if (!(s.value_range > 0.0f)) bad_spec("value_range must be positive");
  for (DType t : {s.dtype, s.out_dtype}) {
    if (t == DType::kI32 || t == DType::kF8E4M3) {
      bad_spec("dtype and out_dtype must be f32, bf16 or f16 (fp8 caches: kv_quant)");
    }
  }
  if (!s.slots.empty()) {
    if (s.slots.size() > static_cast<size_t>(s.batch_capacity)) {
      bad_spec(std::to_string(s.slots.size()) + " slots exceed batch_capacity " +
               std::to_string(s.batch_capacity));
    }
    if (!s.slot_positions.empty() && s.slot_positions.size() != s.slots.size()) {
      bad_spec("slot_positions must be empty or have one entry per slot");
    }
    for (const SlotSpec& slot : s.slots) {
      if (slot.q_len < 0 || slot.context_len < 0) bad_spec("slot lengths must be >= 0");
    }
    return;
  }
  if (s.num_active < 0 || s.num_active > s.batch_capacity) {
    bad_spec("num_active must be in [0, batch_capacity]");
  }
  if (s.decode_weight < 0 || s.chunk_weight < 0 || s.fresh_weight < 0 ||
      (s.num_active > 0 && !(s.decode_weight + s.chunk_weight + s.fresh_weight > 0))) {
    bad_spec("mix weights must be >= 0 with a positive sum");
  }
  if (s.min_context < 0 || s.min_context > s.max_context || s.min_chunk < 2 ||
      s.min_chunk > s.max_chunk || s.min_prompt < 1 || s.min_prompt > s.max_prompt) {
    bad_spec(
        "need 0 <= min_context <= max_context, 2 <= min_chunk <= max_chunk and "
        "1 <= min_prompt <= max_prompt");
  }
}

int32_t pages_for(int64_t seq_len, int32_t page_size) {
  return static_cast<int32_t>((seq_len + page_size - 1) / page_size);
}

int32_t uniform_i32(Rng& rng, int32_t lo, int32_t hi) {
  return static_cast<int32_t>(rng.uniform_int(lo, hi));
}

// One slot of the random mix: decode, chunked prefill or fresh prompt by weight.
SlotSpec draw_slot(const BatchSpec& s, Rng& rng) {
  const double pick = rng.uniform01() * (s.decode_weight + s.chunk_weight + s.fresh_weight);
  if (pick < s.decode_weight) return {1, uniform_i32(rng, s.min_context, s.max_context)};
  if (pick < s.decode_weight + s.chunk_weight) {
    const int32_t q_len = uniform_i32(rng, s.min_chunk, s.max_chunk);
    return {q_len, uniform_i32(rng, s.min_context, s.max_context)};
  }
  return {uniform_i32(rng, s.min_prompt, s.max_prompt), 0};
}

// Where the placed slots go: the explicit positions, or distinct random ones in
// increasing order (so the i-th placed slot is the i-th in slot order).
std::vector<int32_t> slot_positions(const BatchSpec& s, size_t count, Rng& rng) {
  if (!s.slot_positions.empty()) {
    std::vector<bool> taken(s.batch_capacity, false);
    for (int32_t position : s.slot_positions) {
      if (position < 0 || position >= s.batch_capacity || taken[position]) {
        bad_spec("slot position " + std::to_string(position) + " is out of range or repeated");
      }
      taken[position] = true;
    }
    return s.slot_positions;
  }
  std::vector<int32_t> all(s.batch_capacity);
  std::iota(all.begin(), all.end(), 0);
  for (size_t i = 0; i < count; ++i) {  // a partial Fisher-Yates shuffle
    std::swap(all[i], all[uniform_i32(rng, static_cast<int32_t>(i), s.batch_capacity - 1)]);
  }
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

// An entry past a slot's live pages: -1 half of the time, else a value that is
// no page index, so that a backend reading it fails loudly under a sanitizer.
int32_t dead_entry(int32_t num_pages, Rng& rng) {
  switch (rng.uniform_int(0, 7)) {
    case 0:
      return num_pages;
    case 1:
      return num_pages + 1000;
    case 2:
      return INT32_MIN;
    case 3:
      return INT32_MAX;
    default:
      return -1;
  }
}

// Gives every live logical page a physical page and poisons the other entries.
void assign_pages(const BatchSpec& spec, Rng& rng, Layout* layout) {
  const int64_t capacity = spec.batch_capacity;
  const int32_t page = spec.page_size;
  const int64_t row = layout->max_pages_per_seq;
  // Pages are first numbered in allocation order, then permuted.
  std::vector<int32_t> table(capacity * row, -1);
  int32_t allocated = 0;
  std::vector<int32_t> earlier;  // active slots that already have pages
  for (int64_t s = 0; s < capacity; ++s) {
    const int32_t q_len = layout->q_lens[s];
    const int32_t seq_len = layout->seq_lens[s];
    if (q_len == 0 || seq_len == 0) continue;
    int32_t shared = 0;
    if (!earlier.empty() && rng.bernoulli(spec.shared_prefix_fraction)) {
      const int32_t donor = earlier[rng.uniform_int(0, static_cast<int64_t>(earlier.size()) - 1)];
      // Only pages full in the donor and inside this slot's cached context are
      // shared: neither sequence has a dead tail slot in them, so one page can
      // hold the keys of both.
      const int32_t full = std::min(layout->seq_lens[donor], seq_len - q_len) / page;
      if (full > 0) shared = uniform_i32(rng, 1, full);
      std::copy_n(&table[donor * row], shared, &table[s * row]);
    }
    for (int32_t p = shared; p < pages_for(seq_len, page); ++p) table[s * row + p] = allocated++;
    earlier.push_back(static_cast<int32_t>(s));
  }
  layout->num_pages = std::max(1, allocated + spec.spare_pages);

  // A waiting slot (seq_len > 0, q_len 0) gets valid entries, pointing at the
  // NaN spare pages where there are some: reading them would show in out.
  for (int64_t s = 0; s < capacity; ++s) {
    if (layout->q_lens[s] != 0) continue;
    for (int32_t p = 0; p < pages_for(layout->seq_lens[s], page); ++p) {
      table[s * row + p] = spec.spare_pages > 0
                               ? allocated + uniform_i32(rng, 0, spec.spare_pages - 1)
                               : uniform_i32(rng, 0, layout->num_pages - 1);
    }
  }

  std::vector<int32_t> physical(layout->num_pages);
  std::iota(physical.begin(), physical.end(), 0);
  if (spec.permute_pages) {
    for (int32_t i = layout->num_pages - 1; i > 0; --i) {
      std::swap(physical[i], physical[uniform_i32(rng, 0, i)]);
    }
  }
  layout->block_table.resize(table.size());
  layout->live_tokens.assign(layout->num_pages, 0);
  for (int64_t s = 0; s < capacity; ++s) {
    const bool active = layout->q_lens[s] > 0 && layout->seq_lens[s] > 0;
    for (int64_t p = 0; p < row; ++p) {
      const int32_t entry = table[s * row + p];
      if (entry < 0) {
        layout->block_table[s * row + p] = dead_entry(layout->num_pages, rng);
        continue;
      }
      const int32_t target = physical[entry];
      layout->block_table[s * row + p] = target;
      if (active) {
        const int32_t tokens =
            static_cast<int32_t>(std::min<int64_t>(page, layout->seq_lens[s] - p * page));
        layout->live_tokens[target] = std::max(layout->live_tokens[target], tokens);
      }
    }
  }
}

}  // namespace

Layout make_layout(const BatchSpec& spec, Rng& rng) {
  check_spec(spec);
  const int32_t capacity = spec.batch_capacity;
  std::vector<SlotSpec> placed = spec.slots;
  if (placed.empty()) {
    for (int32_t i = 0; i < spec.num_active; ++i) placed.push_back(draw_slot(spec, rng));
  }
  const std::vector<int32_t> positions = slot_positions(spec, placed.size(), rng);

  Layout layout;
  layout.q_lens.assign(capacity, 0);
  layout.seq_lens.assign(capacity, 0);
  std::vector<bool> filler(capacity, true);
  int64_t longest = 0;
  for (size_t i = 0; i < placed.size(); ++i) {
    const int64_t seq_len = int64_t{placed[i].context_len} + placed[i].q_len;
    if (seq_len > INT32_MAX) bad_spec("a slot's seq_len overflows int32");
    layout.q_lens[positions[i]] = placed[i].q_len;
    layout.seq_lens[positions[i]] = static_cast<int32_t>(seq_len);
    filler[positions[i]] = false;
    longest = std::max(longest, seq_len);
  }

  const int32_t needed = pages_for(longest, spec.page_size);
  layout.max_pages_per_seq =
      spec.max_pages_per_seq > 0 ? spec.max_pages_per_seq : needed + kExtraPagesPerSeq;
  if (needed > layout.max_pages_per_seq) {
    bad_spec("max_pages_per_seq " + std::to_string(spec.max_pages_per_seq) + " < the " +
             std::to_string(needed) + " pages of the longest slot");
  }

  // The other slots alternate between the two inactive kinds the contract
  // allows: empty (seq_len 0) and waiting (seq_len > 0, q_len 0).
  const int64_t longest_waiting = std::min<int64_t>(
      std::max<int64_t>(longest, 1), int64_t{layout.max_pages_per_seq} * spec.page_size);
  bool waiting = rng.bernoulli(0.5);
  for (int32_t s = 0; s < capacity; ++s) {
    if (!filler[s]) continue;
    if (waiting) layout.seq_lens[s] = static_cast<int32_t>(rng.uniform_int(1, longest_waiting));
    waiting = !waiting;
  }

  assign_pages(spec, rng, &layout);
  return layout;
}

}  // namespace rpa::gen
