// check_metadata(): the value half of the contract checks (docs/contract.md §3). It reads
// query_start_len and seq_lens once per slot and block_table only at the live
// pages of active slots, so it costs O(batch_capacity + live pages): entries
// past a slot's live pages and the rows of inactive slots may hold garbage and
// are never read.
#include "core/message.h"
#include "core/problem.h"

namespace rpa {
namespace {

Status check_query_starts(const Problem& p) {
  const int32_t* starts = p.query_start_len;
  if (starts[0] != 0) {
    return Status::Invalid(cat("query_start_len[0] = ", starts[0], " must be 0"));
  }
  for (int64_t s = 1; s <= p.batch_capacity; ++s) {
    if (starts[s] < starts[s - 1]) {
      return Status::Invalid(cat("query_start_len[", s, "] = ", starts[s],
                                 " is less than query_start_len[", s - 1, "] = ", starts[s - 1],
                                 ": query_start_len must never decrease"));
    }
  }
  const int64_t end = starts[p.batch_capacity];
  if (end > p.num_tokens) {
    return Status::Invalid(cat("query_start_len[", p.batch_capacity, "] = ", end,
                               " exceeds num_tokens = ", p.num_tokens, " (q.shape[0])"));
  }
  return Status::Ok();
}

// Checks the live block_table entries of active slot `s`.
Status check_live_pages(const Problem& p, int64_t s) {
  const int64_t seq_len = p.seq_lens[s];
  const int64_t live_pages = (seq_len + p.page_size - 1) / p.page_size;
  const int32_t* pages = p.pages_of(s);
  for (int64_t i = 0; i < live_pages; ++i) {
    if (pages[i] < 0 || pages[i] >= p.num_pages) {
      return Status::Invalid(cat("block_table[", s, ", ", i, "] = ", pages[i],
                                 " is inside the live range of slot ", s, " (seq_len ", seq_len,
                                 ", page_size ", p.page_size, ") but is not a page in [0, ",
                                 p.num_pages, ") (num_pages)"));
    }
  }
  return Status::Ok();
}

}  // namespace

Status check_metadata(const Problem& p) {
  RPA_RETURN_IF_ERROR(check_query_starts(p));
  const int64_t max_keys = p.max_pages_per_seq * p.page_size;  // fits int32: describe checked it
  for (int64_t s = 0; s < p.batch_capacity; ++s) {
    const int64_t seq_len = p.seq_lens[s];
    if (seq_len < 0) return Status::Invalid(cat("seq_lens[", s, "] = ", seq_len, " is negative"));
    // A slot with seq_len 0 is inactive whatever its q_len (docs/contract.md §1): a scheduler
    // may leave query rows assigned to a slot it has emptied. Its rows are not
    // written, so there is nothing to check against.
    if (seq_len == 0) continue;
    const int64_t q_len = p.q_len(s);
    if (q_len > seq_len) {
      return Status::Invalid(cat("seq_lens[", s, "] = ", seq_len, ": q_len ", q_len,
                                 " (query_start_len[", s + 1, "] - query_start_len[", s,
                                 "]) exceeds it"));
    }
    if (seq_len > max_keys) {
      return Status::Invalid(cat("seq_lens[", s, "] = ", seq_len,
                                 " exceeds max_pages_per_seq * page_size = ", p.max_pages_per_seq,
                                 " * ", p.page_size, " = ", max_keys,
                                 ", the keys block_table can address"));
    }
    if (q_len > 0) RPA_RETURN_IF_ERROR(check_live_pages(p, s));
  }
  return Status::Ok();
}

}  // namespace rpa
