// How every backend reads a work item: where the page of one of its keys sits
// in the plan's page list, and where a split chain's partial records lie.
// One definition, host and device, so that the CPU, single-loop and CUDA
// executors cannot disagree about the plan's layout (include/rpa/plan.h).
#pragma once

#include <cstdint>

#include "core/host_device.h"
#include "rpa/plan.h"

namespace rpa {

// a / b rounded up, for a >= 0 and b > 0: the pages that a keys fill.
RPA_HOST_DEVICE constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The index into Plan::pages of the page that holds key `key` of `item`
// (kv_begin <= key; item.page_index holds the page of kv_begin).
RPA_HOST_DEVICE int64_t page_list_index(const WorkItem& item, int64_t key, int64_t page_size) {
  return item.page_index + key / page_size - item.kv_begin / page_size;
}

// Floats of one partial record: m, l, then o[head_dim].
RPA_HOST_DEVICE int64_t partial_record_floats(int64_t head_dim) { return head_dim + 2; }

// The offset, in floats of the partials workspace, of the record of packed row
// `packed_row` (= row of the tile * heads_per_kv + head) of the chain whose
// partial rows start at `partial_row`.
RPA_HOST_DEVICE int64_t partial_record_offset(int64_t partial_row, int64_t packed_row,
                                              int64_t heads_per_kv, int64_t head_dim) {
  const int64_t record = partial_record_floats(head_dim);
  return (partial_row * heads_per_kv + packed_row) * record;
}

}  // namespace rpa
