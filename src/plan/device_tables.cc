// The device tables (include/rpa/device_tables.h): the plan's items with the
// kv heads of a row merged into one row, page ids inline, chains dealt to
// cores longest-first and every core padded to one trip count.
#include "rpa/device_tables.h"

#include <algorithm>
#include <numeric>

#include "core/message.h"
#include "core/row_mask.h"
#include "plan/item_decode.h"
#include "rpa/dtype.h"

namespace rpa {
namespace {

// Q tiles any batch of `shapes` can make: each live slot makes
// ceil(q_len / tile) <= 1 + (q_len - 1) / tile tiles, and the sum is largest
// with as many live slots as there can be (each slot needs >= 1 row).
int64_t max_tiles(const DeviceShapes& shapes, int64_t tile_rows) {
  const int64_t live = std::min(shapes.batch_capacity, shapes.num_tokens);
  return live + (shapes.num_tokens - live) / tile_rows;
}

// Blocks of `block` keys (cut at multiples of `block`) that one tile's key
// range can touch: the range lies in [0, max_pages_per_seq * page_size), and
// under a window it is at most tile_rows + window - 1 keys long.
int64_t max_blocks_per_tile(const DeviceShapes& shapes, int64_t tile_rows, int64_t block) {
  int64_t blocks = ceil_div(shapes.max_pages_per_seq * shapes.page_size, block);
  if (shapes.sliding_window > 0) {
    const int64_t keys = tile_rows + shapes.sliding_window - 1;
    blocks = std::min(blocks, (keys - 1) / block + 2);
  }
  return std::max<int64_t>(blocks, 1);
}

int64_t row_groups(const DeviceShapes& shapes, const DeviceTablesConfig& config) {
  return shapes.num_kv_heads / std::max(1, config.kv_heads_per_row);
}

Status check_config(const DeviceTablesConfig& c, int64_t num_kv_heads) {
  if (c.kv_heads_per_row < 0 || (c.kv_heads_per_row > 0 && num_kv_heads % c.kv_heads_per_row)) {
    return Status::Invalid(cat("DeviceTablesConfig.kv_heads_per_row = ", c.kv_heads_per_row,
                               " must be 0 (all) or divide num_kv_heads ", num_kv_heads));
  }
  if (c.num_cores < 1 || c.num_cores > 64) {
    return Status::Invalid(
        cat("DeviceTablesConfig.num_cores = ", c.num_cores, " must be in [1, 64]"));
  }
  return Status::Ok();
}

// A run of consecutive rows that must stay on one core: a chain (reset ..
// flush), or a merge group.
struct Span {
  int64_t first = 0;
  int64_t count = 0;
};

// Longest-first onto the least-loaded core (ties: the lower core); each
// core keeps its spans in table order. Returns the spans of every core.
std::vector<std::vector<Span>> deal(std::vector<Span> spans, int32_t cores) {
  std::vector<size_t> order(spans.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return spans[a].count > spans[b].count; });
  std::vector<int64_t> load(static_cast<size_t>(cores), 0);
  std::vector<std::vector<size_t>> picked(static_cast<size_t>(cores));
  for (size_t i : order) {
    const size_t c = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[c] += spans[i].count;
    picked[c].push_back(i);
  }
  std::vector<std::vector<Span>> out(static_cast<size_t>(cores));
  for (size_t c = 0; c < picked.size(); ++c) {
    std::sort(picked[c].begin(), picked[c].end());
    for (size_t i : picked[c]) out[c].push_back(spans[i]);
  }
  return out;
}

// Lays `table` (rows of `width`) out per core: each core's spans in order,
// then copies of `noop` up to the longest core's length.
void per_core(const std::vector<int32_t>& table, int32_t width, const std::vector<Span>& spans,
              int32_t cores, const std::vector<int32_t>& noop, std::vector<int32_t>* out,
              int64_t* per_core_rows) {
  const std::vector<std::vector<Span>> dealt = deal(spans, cores);
  int64_t longest = 0;
  for (const auto& core : dealt) {
    int64_t n = 0;
    for (const Span& s : core) n += s.count;
    longest = std::max(longest, n);
  }
  out->clear();
  out->reserve(static_cast<size_t>(cores * longest * width));
  for (const auto& core : dealt) {
    int64_t n = 0;
    for (const Span& s : core) {
      out->insert(out->end(), table.begin() + s.first * width,
                  table.begin() + (s.first + s.count) * width);
      n += s.count;
    }
    for (; n < longest; ++n) out->insert(out->end(), noop.begin(), noop.end());
  }
  *per_core_rows = longest;
}

// Whether some live lane of the row must not see some key of the gathered
// chunk: a partial chunk, -1 pages, the causal diagonal, the window's lower
// edge or seq_len. Interior rows let the kernel skip the mask (predicated).
bool needs_mask(const WorkItem& item, int64_t chunk, int32_t window) {
  const int64_t base = item.kv_begin / chunk * chunk;
  if (item.kv_begin != base || item.kv_end != base + chunk) return true;
  // Every row sees [first_key(its pos), end_key(its pos)): the chunk is
  // unmasked when it lies inside the range of the tile's first row's end and
  // its last row's start.
  const RowMask mask{window};
  const int64_t min_hi = mask.end_key(item.q_pos, item.seq_len);
  const int64_t max_lo = mask.first_key(int64_t{item.q_pos} + item.q_rows - 1);
  return item.kv_begin < max_lo || item.kv_end > min_hi;
}

}  // namespace

int32_t device_kv_chunk_tokens(int64_t page_size, int64_t num_kv_heads, int64_t head_dim,
                               int64_t kv_elem_bytes) {
  constexpr int64_t kTargetBytes = int64_t{8} << 20;  // K+V per row
  constexpr int64_t kMaxChunk = 8192;
  const int64_t per_token = std::max<int64_t>(1, 2 * num_kv_heads * head_dim * kv_elem_bytes);
  int64_t chunk = 1;
  while (chunk * 2 <= kMaxChunk && chunk * 2 * per_token <= kTargetBytes) chunk *= 2;
  page_size = std::max<int64_t>(1, page_size);
  chunk = std::max(page_size, chunk / page_size * page_size);
  return static_cast<int32_t>(chunk);
}

int64_t device_max_rows(const DeviceShapes& shapes, const DeviceTablesConfig& config) {
  const int64_t tile = std::max(1, config.q_tile_rows);
  return max_tiles(shapes, tile) * max_blocks_per_tile(shapes, tile, config.kv_chunk_tokens) *
         row_groups(shapes, config);
}

int64_t device_max_merges(const DeviceShapes& shapes, const DeviceTablesConfig& config) {
  const int64_t tile = std::max(1, config.q_tile_rows);
  return max_tiles(shapes, tile) * max_blocks_per_tile(shapes, tile, config.split_tokens) *
         row_groups(shapes, config);
}

int64_t device_max_partial_rows(const DeviceShapes& shapes, const DeviceTablesConfig& config) {
  // A slot of q_len rows in T tiles splits at T * split_tokens, so its
  // partial rows are q_len times at most the splits of one split_tokens cut.
  const int64_t tile = std::max(1, config.q_tile_rows);
  return shapes.num_tokens * max_blocks_per_tile(shapes, tile, config.split_tokens) *
         row_groups(shapes, config);
}

Status export_device_tables(const Plan& plan, const DeviceShapes& shapes,
                            const DeviceTablesConfig& requested, DeviceTables* tables) {
  RPA_RETURN_IF_ERROR(check_config(requested, plan.num_kv_heads));
  // The bounds and a compiled kernel assume one tile height: the CPU
  // default's taller tiles for long prompts (heuristics.h) do not export.
  if (plan.max_tile_rows > plan.config.q_tile_rows) {
    return Status::Invalid(cat("export_device_tables: the plan cuts some prompt into tiles of ",
                               plan.max_tile_rows,
                               " rows, taller than its q_tile_rows = ", plan.config.q_tile_rows,
                               " (the CPU default's per-slot heights): plan with an explicit "
                               "PlanConfig::q_tile_rows"));
  }
  DeviceTables t;
  t.shapes = shapes;
  t.config = requested;
  t.config.q_tile_rows = plan.config.q_tile_rows;
  t.config.kv_chunk_tokens = plan.config.kv_chunk_tokens;
  t.config.split_tokens = plan.config.split_tokens;
  if (t.config.kv_heads_per_row == 0)
    t.config.kv_heads_per_row = static_cast<int32_t>(plan.num_kv_heads);
  t.heads_per_kv = plan.heads_per_kv;
  t.head_dim = plan.head_dim;
  const int64_t page = plan.page_size;
  const int64_t chunk = plan.config.kv_chunk_tokens;
  t.pages_per_row = static_cast<int32_t>(chunk / page);
  t.row_width = kRowFields + t.pages_per_row;
  const int32_t width = t.row_width;
  const int32_t group = t.config.kv_heads_per_row;

  // Plan partial row -> device partial row, for the merge rows.
  std::vector<int32_t> partial_of(static_cast<size_t>(plan.num_partial_rows), -1);
  std::vector<Span> chains;
  int64_t partials = 0;
  for (const std::vector<WorkItem>* items : {&plan.decode_items, &plan.prefill_items}) {
    for (const WorkItem& item : *items) {
      if (item.kv_head % group != 0) continue;  // merged into its group's row
      const int64_t base = item.kv_begin / chunk * chunk;
      const int64_t at = static_cast<int64_t>(t.rows.size());
      t.rows.resize(static_cast<size_t>(at + width), -1);
      int32_t* row = t.rows.data() + at;
      row[kRowSlot] = item.slot;
      row[kRowKvHead] = item.kv_head;
      row[kRowQRow] = item.q_row;
      row[kRowQRows] = item.q_rows;
      row[kRowQPos] = item.q_pos;
      row[kRowSeqLen] = item.seq_len;
      row[kRowKvBegin] = item.kv_begin;
      row[kRowKvEnd] = item.kv_end;
      row[kRowKvBase] = static_cast<int32_t>(base);
      row[kRowFlags] = (item.starts_tile() ? kRowReset : 0) | (item.ends_tile() ? kRowFlush : 0) |
                       (needs_mask(item, chunk, plan.options.sliding_window) ? kRowNeedsMask : 0);
      row[kRowPartial] = -1;
      if (item.partial >= 0) {
        partial_of[static_cast<size_t>(item.partial)] = static_cast<int32_t>(partials);
        row[kRowPartial] = static_cast<int32_t>(partials);
        partials += item.q_rows;
      }
      // Slots of the chunk outside [kv_begin, kv_end) stay -1.
      for (int64_t p = item.kv_begin / page; p * page < item.kv_end; ++p) {
        const int64_t key = std::max<int64_t>(p * page, item.kv_begin);
        row[kRowFields + (p - base / page)] =
            plan.pages[static_cast<size_t>(page_list_index(item, key, page))];
      }
      if (item.starts_tile()) chains.push_back({at / width, 0});
      if (chains.empty()) {
        return Status::Internal(cat("device tables: item of slot ", item.slot,
                                    " continues a chain that never started"));
      }
      chains.back().count += 1;
    }
  }
  t.num_rows = static_cast<int64_t>(t.rows.size()) / width;
  t.num_partial_rows = partials;

  std::vector<Span> groups;
  for (const MergeGroup& m : plan.merges) {
    if (m.kv_head % group != 0) continue;
    groups.push_back({static_cast<int64_t>(t.merges.size()) / kMergeFields, m.count});
    for (int32_t j = 0; j < m.count; ++j) {
      const int32_t mapped = partial_of[static_cast<size_t>(m.first_partial + j * m.q_rows)];
      if (mapped < 0) {
        return Status::Internal(cat("device tables: merge group of slot ", m.slot, " kv_head ",
                                    m.kv_head, " split ", j, " has no partial row"));
      }
      const int32_t flags = (j == 0 ? kRowReset : 0) | (j + 1 == m.count ? kRowFlush : 0);
      t.merges.insert(t.merges.end(), {m.slot, m.kv_head, m.q_row, m.q_rows, mapped, flags});
    }
  }
  t.num_merges = static_cast<int64_t>(t.merges.size()) / kMergeFields;

  std::vector<int32_t> noop_row(static_cast<size_t>(width), -1);
  std::fill(noop_row.begin(), noop_row.begin() + kRowFields, 0);
  noop_row[kRowPartial] = -1;
  per_core(t.rows, width, chains, t.config.num_cores, noop_row, &t.core_rows, &t.rows_per_core);
  const std::vector<int32_t> noop_merge = {0, 0, 0, 0, -1, 0};
  per_core(t.merges, kMergeFields, groups, t.config.num_cores, noop_merge, &t.core_merges,
           &t.merges_per_core);
  *tables = std::move(t);
  return Status::Ok();
}

Status make_device_tables(const AttentionInputs& inputs, const AttentionOptions& options,
                          DeviceTables* tables, const DeviceTablesConfig& requested) {
  const TensorView& k = inputs.k_cache;
  const TensorView& q = inputs.q;
  if (k.rank != 4 || q.rank != 4 || inputs.block_table.rank != 2) {
    return Status::Invalid(
        cat("device tables need q and k_cache of rank 4 and block_table of "
            "rank 2, got ranks ",
            q.rank, ", ", k.rank, ", ", inputs.block_table.rank));
  }
  RPA_RETURN_IF_ERROR(check_config(requested, k.shape[2]));
  DeviceShapes shapes;
  shapes.num_tokens = q.shape[0];
  shapes.batch_capacity = inputs.block_table.shape[0];
  shapes.max_pages_per_seq = inputs.block_table.shape[1];
  shapes.page_size = k.shape[1];
  shapes.num_kv_heads = k.shape[2];
  shapes.sliding_window = options.sliding_window;
  PlanConfig config;
  config.q_tile_rows = requested.q_tile_rows;
  if (config.q_tile_rows == 0) {
    // Rows x heads_per_kv fill the 128 partitions of a NeuronCore's SBUF.
    config.q_tile_rows =
        static_cast<int32_t>(std::max<int64_t>(1, 128 / std::max<int64_t>(1, q.shape[2])));
  }
  config.kv_chunk_tokens = requested.kv_chunk_tokens;
  if (config.kv_chunk_tokens == 0) {
    config.kv_chunk_tokens =
        device_kv_chunk_tokens(k.shape[1], k.shape[2], k.shape[3], dtype_size(k.dtype));
  }
  config.split_tokens = requested.split_tokens;
  if (config.split_tokens == 0 && config.kv_chunk_tokens > 0) {
    config.split_tokens = 4 * config.kv_chunk_tokens;
  }
  Plan plan;
  RPA_RETURN_IF_ERROR(make_plan(inputs, options, &plan, config, Backend::kCpu));
  return export_device_tables(plan, shapes, requested, tables);
}

const std::vector<std::string>& device_row_field_names() {
  static const std::vector<std::string> names = {"slot",    "kv_head", "q_row",    "q_rows",
                                                 "q_pos",   "seq_len", "kv_begin", "kv_end",
                                                 "kv_base", "flags",   "partial"};
  return names;
}

const std::vector<std::string>& device_merge_field_names() {
  static const std::vector<std::string> names = {"slot",   "kv_head", "q_row",
                                                 "q_rows", "partial", "flags"};
  return names;
}

}  // namespace rpa
