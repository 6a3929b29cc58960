// The contract checks of docs/contract.md §3 that check_metadata() makes on
// the values of query_start_len, seq_lens and the live block_table entries.

#include "validate_call.h"

namespace rpa {
namespace {

using namespace validate_test;

// Errors found by check_metadata(): the values of query_start_len, seq_lens
// and the live block_table entries.
const Breakage kMetadataBreakages[] = {
    {"QueryStartNotZero",
     [](Call& c) { c.query_start_len[0] = 1; },
     kInvalid,
     {"query_start_len[0] = 1 must be 0"}},
    {"QueryStartDecreases",
     [](Call& c) { c.query_start_len[2] = 0; },
     kInvalid,
     {"query_start_len[2] = 0 is less than query_start_len[1] = 1"}},
    {"QueryStartPastTokens",
     [](Call& c) { c.query_start_len[4] = 9; },
     kInvalid,
     {"query_start_len[4] = 9 exceeds num_tokens = 8"}},
    {"NegativeSeqLen",
     [](Call& c) { c.seq_lens[1] = -3; },
     kInvalid,
     {"seq_lens[1] = -3 is negative"}},
    {"QueryLongerThanSeq",
     [](Call& c) { c.seq_lens[2] = 4; },
     kInvalid,
     {"seq_lens[2] = 4: q_len 5 (query_start_len[3] - query_start_len[2]) exceeds it"}},
    {"SeqPastBlockTable",
     [](Call& c) { c.seq_lens[2] = 25; },
     kInvalid,
     {"seq_lens[2] = 25 exceeds max_pages_per_seq * page_size = 3 * 8 = 24"}},
    // Lengths are checked for slots without query rows too; their pages are not.
    {"IdleSeqPastBlockTable",
     [](Call& c) { c.seq_lens[3] = 100; },
     kInvalid,
     {"seq_lens[3] = 100 exceeds max_pages_per_seq * page_size = 3 * 8 = 24"}},
    {"LivePageMinusOne",
     [](Call& c) { c.page(2, 1) = -1; },
     kInvalid,
     {"block_table[2, 1] = -1 is inside the live range of slot 2 (seq_len 17, page_size 8)"}},
    {"LivePagePastPool",
     [](Call& c) { c.page(0, 1) = 6; },
     kInvalid,
     {"block_table[0, 1] = 6 is inside the live range of slot 0", "[0, 6)"}},
    {"LastPartialPage",
     [](Call& c) { c.page(2, 2) = kMax32; },
     kInvalid,
     {"block_table[2, 2] = 2147483647 is inside the live range of slot 2"}},
};

class MetadataError : public ::testing::TestWithParam<Breakage> {};

TEST_P(MetadataError, IsRejected) { expect_rejected(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(Validate, MetadataError, ::testing::ValuesIn(kMetadataBreakages),
                         breakage_name);

}  // namespace
}  // namespace rpa
