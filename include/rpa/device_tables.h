// The plan as int32 tables for a device kernel that runs ONE runtime loop
// (docs/neuron.md). Derived from an rpa::Plan, never planned separately: the
// rows are the plan's items with the kv heads of a row merged, page ids
// inline, and chains dealt to cores.
//
// Row layout (kRowFields scalars, then pages_per_row page ids):
//   one row = one (Q tile or decode row, K/V chunk) for kv heads
//   [kv_head, kv_head + kv_heads_per_row). Lane r * heads_per_kv + g of a
//   kv head is query row q_row + r, head g. Token t of the gathered chunk is
//   key kv_base + t; page slot i holds keys [kv_base + i * page_size, ...)
//   and is -1 where no key of [kv_begin, kv_end) lies in it, so a gather
//   with skip semantics moves exactly the pages the row needs. A no-op row
//   (padding) has q_rows 0, flags 0, partial -1 and only -1 pages.
// Merge rows: one per split chain of a split tile, in split order; a merge
//   group's first row resets the merge state, its last flushes to out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rpa/attention.h"
#include "rpa/plan.h"

namespace rpa {

enum DeviceRowField : int32_t {
  kRowSlot = 0,
  kRowKvHead,   // first kv head of the row
  kRowQRow,     // first token row of the tile in q / out
  kRowQRows,    // live rows of the tile; 0 on a no-op row
  kRowQPos,     // absolute position of the tile's first row
  kRowSeqLen,   // keys of the slot
  kRowKvBegin,  // the row streams keys [kv_begin, kv_end)
  kRowKvEnd,
  kRowKvBase,   // key of token 0 of the gathered chunk (a multiple of kv_chunk_tokens)
  kRowFlags,    // DeviceRowFlags
  kRowPartial,  // on a chain's flush row: -1 = to out, else its first partial row
  kRowFields,
};

enum DeviceRowFlags : int32_t {
  kRowReset = 1,      // reset (m, l, o) before this row
  kRowFlush = 2,      // flush after it (to out, or to partial rows when partial >= 0)
  kRowNeedsMask = 4,  // some lane must not see some key of [kv_base, kv_base + chunk)
};

enum DeviceMergeField : int32_t {
  kMergeSlot = 0,
  kMergeKvHead,
  kMergeQRow,
  kMergeQRows,    // 0 on a no-op row
  kMergePartial,  // the partial row this split left, onward q_rows rows
  kMergeFlags,    // kRowReset on a group's first split, kRowFlush on its last
  kMergeFields,
};

struct DeviceTablesConfig {
  int32_t q_tile_rows = 0;       // 0: 128 / heads_per_kv (lanes fill the partitions)
  int32_t kv_chunk_tokens = 0;   // 0: device_kv_chunk_tokens(); a multiple of page_size
  int32_t split_tokens = 0;      // 0: 4 chunks; a multiple of kv_chunk_tokens
  int32_t kv_heads_per_row = 0;  // 0: all kv heads; must divide num_kv_heads
  int32_t num_cores = 2;         // per-core tables (LNC=2 on Trn2/Trn3; 1 on Inf2)
};

// The static shapes the table sizes depend on: never the batch's contents.
struct DeviceShapes {
  int64_t num_tokens = 0;
  int64_t batch_capacity = 0;
  int64_t max_pages_per_seq = 0;
  int64_t page_size = 0;
  int64_t num_kv_heads = 0;
  int64_t sliding_window = 0;  // 0 = none; a window bounds a tile's keys
};

struct DeviceTables {
  DeviceTablesConfig config;  // resolved: no zeros
  DeviceShapes shapes;
  int64_t heads_per_kv = 0;
  int64_t head_dim = 0;
  int32_t pages_per_row = 0;  // kv_chunk_tokens / page_size
  int32_t row_width = 0;      // kRowFields + pages_per_row

  std::vector<int32_t> rows;         // [num_rows, row_width], plan order
  std::vector<int32_t> core_rows;    // [num_cores, rows_per_core, row_width], padded
  std::vector<int32_t> merges;       // [num_merges, kMergeFields]
  std::vector<int32_t> core_merges;  // [num_cores, merges_per_core, kMergeFields], padded
  int64_t num_rows = 0;
  int64_t rows_per_core = 0;  // the trip count every core runs
  int64_t num_merges = 0;
  int64_t merges_per_core = 0;
  // Partial row p holds, per lane of the row's kv heads, (m, l, o[head_dim]):
  // record ((p * kv_heads_per_row + h) * heads_per_kv + g).
  int64_t num_partial_rows = 0;
};

// Keys per row on a NeuronCore from static shapes: K+V of one chunk of all
// kv heads near 8 MiB (docs/neuron.md, "Chunk size"), a power of two in
// [page_size, 8192] rounded to a multiple of page_size.
int32_t device_kv_chunk_tokens(int64_t page_size, int64_t num_kv_heads, int64_t head_dim,
                               int64_t kv_elem_bytes);

// Upper bounds from static shapes and a resolved config (kv_chunk_tokens,
// q_tile_rows, split_tokens, kv_heads_per_row set): every batch of these
// shapes has num_rows and rows_per_core <= max_rows, num_merges and
// merges_per_core <= max_merges, num_partial_rows <= max_partial_rows.
int64_t device_max_rows(const DeviceShapes& shapes, const DeviceTablesConfig& config);
int64_t device_max_merges(const DeviceShapes& shapes, const DeviceTablesConfig& config);
int64_t device_max_partial_rows(const DeviceShapes& shapes, const DeviceTablesConfig& config);

// Plans `inputs` with the device sizes and exports the tables.
Status make_device_tables(const AttentionInputs& inputs, const AttentionOptions& options,
                          DeviceTables* tables, const DeviceTablesConfig& config = {});

// The tables of an existing plan (made with `shapes`' block_table, and with
// an explicit PlanConfig::q_tile_rows where a prompt could reach the CPU
// default's taller tiles: a plan of two tile heights is refused); only
// kv_heads_per_row and num_cores of `config` are read.
Status export_device_tables(const Plan& plan, const DeviceShapes& shapes,
                            const DeviceTablesConfig& config, DeviceTables* tables);

// Field names, in column order, for headers and messages.
const std::vector<std::string>& device_row_field_names();
const std::vector<std::string>& device_merge_field_names();

}  // namespace rpa
