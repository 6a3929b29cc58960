// The keys a query row sees (docs/contract.md §1): causal, so none past the
// row's own position nor past its slot's seq_len, and with a sliding window W
// only the W most recent. The planner, the cpu, single-loop and cuda
// executors all ask this one type; the reference keeps its own, independent
// statement of the rule, as an oracle must.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace rpa {

struct RowMask {
  int32_t window = 0;  // 0 = no window

  // The first key the row at absolute position `pos` sees.
  RPA_HOST_DEVICE int64_t first_key(int64_t pos) const {
    const int64_t first = pos - window + 1;
    return window > 0 && first > 0 ? first : 0;
  }
  // One past the last key it sees.
  RPA_HOST_DEVICE int64_t end_key(int64_t pos, int64_t seq_len) const {
    return pos + 1 < seq_len ? pos + 1 : seq_len;
  }
  RPA_HOST_DEVICE bool sees(int64_t pos, int64_t key, int64_t seq_len) const {
    return key >= first_key(pos) && key < end_key(pos, seq_len);
  }
};

}  // namespace rpa
