// The device tables on disk, and the Neuron cost model. The model is a
// model: iterations x per-iteration overhead + bytes / HBM bandwidth +
// full-tile flops / Tensor Engine rate, with the constants cited in
// docs/neuron.md. It orders kernel designs; it predicts no measured time.
#include "neuron_tables.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "cases/file_io.h"
#include "cases/npy.h"
#include "core/message.h"

namespace rpa::cli {
namespace {

Status write_table(const std::filesystem::path& dir, const char* name,
                   const std::vector<int32_t>& data, std::vector<int64_t> shape) {
  cases::NpyArray array;
  array.descr = "<i4";
  array.shape = std::move(shape);
  array.bytes.resize(data.size() * sizeof(int32_t));
  if (!data.empty()) std::memcpy(array.bytes.data(), data.data(), array.bytes.size());
  return cases::write_npy((dir / name).string(), array);
}

// A target's per-core figures (docs/neuron.md, "Cost model").
struct Target {
  const char* name;
  const char* what;
  int32_t cores;           // cores one kernel spans
  double hbm_per_core;     // bytes/s: the chip's HBM bandwidth / its cores
  double tensor_per_core;  // bf16 flop/s of one Tensor Engine
};

constexpr Target kTargets[] = {
    {"inf2", "Inf2: one NeuronCore-v2 (820 GB/s and 190 TFLOPS per 2-core chip)", 1, 820e9 / 2,
     190e12 / 2},
    {"trn2", "Trn2, LNC=2: two NeuronCore-v3 (2.9 TB/s per 8-core chip; 79 TFLOPS per core)", 2,
     2.9e12 / 8, 79e12},
};
constexpr double kIterLow = 7.5e-6, kIterHigh = 18e-6;  // s per dynamic-loop iteration
constexpr int64_t kLanes = 128;  // the Tensor Engine streams full 128-row tiles

struct Cost {
  int64_t iterations = 0;  // on the busiest core
  double bytes = 0, flops = 0;
};

nlohmann::json cost_json(const char* kernel, const Cost& c, const Target& t) {
  const double hbm = c.bytes / t.hbm_per_core, tensor = c.flops / t.tensor_per_core;
  const double lo = c.iterations * kIterLow, hi = c.iterations * kIterHigh;
  return {{"kernel", kernel},
          {"iterations_per_core", c.iterations},
          {"hbm_bytes_per_core", c.bytes},
          {"tensor_flops_per_core", c.flops},
          {"overhead_ms", {lo * 1e3, hi * 1e3}},
          {"hbm_ms", hbm * 1e3},
          {"tensor_ms", tensor * 1e3},
          {"total_ms", {(lo + hbm + tensor) * 1e3, (hi + hbm + tensor) * 1e3}}};
}

// Our tables on `cores` cores: the busiest core's iterations (rows + merge
// rows, padding included), bytes (live pages of K and V, q and out rows,
// partials) and full-tile flops (every row computes its whole chunk).
Cost tables_cost(const DeviceTables& t, int64_t elem, int64_t out_elem) {
  const int64_t heads = t.config.kv_heads_per_row, d = t.head_dim;
  const int64_t page_bytes = t.shapes.page_size * heads * d * elem;
  const double row_flops = 4.0 * kLanes * d * t.config.kv_chunk_tokens * heads;
  Cost worst;
  for (int64_t c = 0; c < t.config.num_cores; ++c) {
    Cost cost;
    cost.iterations = t.rows_per_core + t.merges_per_core;
    for (int64_t i = 0; i < t.rows_per_core; ++i) {
      const int32_t* r = t.core_rows.data() + (c * t.rows_per_core + i) * t.row_width;
      int64_t pages = 0;
      for (int32_t p = 0; p < t.pages_per_row; ++p) pages += r[kRowFields + p] >= 0;
      const int64_t lanes = int64_t{r[kRowQRows]} * t.heads_per_kv * heads;
      cost.bytes += 2.0 * pages * page_bytes + lanes * d * elem;
      if (r[kRowFlags] & kRowFlush)
        cost.bytes += lanes * (r[kRowPartial] >= 0 ? (d + 2) * 4 : d * out_elem);
      cost.flops += row_flops;
    }
    for (int64_t i = 0; i < t.merges_per_core; ++i) {
      const int32_t* m = t.core_merges.data() + (c * t.merges_per_core + i) * kMergeFields;
      cost.bytes += double(m[kMergeQRows]) * t.heads_per_kv * heads * (d + 2) * 4;
    }
    if (cost.bytes + cost.flops > worst.bytes + worst.flops) worst = cost;
  }
  return worst;
}

// The capacity-masked grid: every q row against all max_pages_per_seq pages
// of all kv heads, unrolled (no dynamic-loop iterations), split evenly over
// the cores.
Cost capacity_cost(const DeviceShapes& s, int64_t d, int64_t elem, int32_t cores) {
  const int64_t keys = s.max_pages_per_seq * s.page_size;
  const int64_t padded = (keys + 511) / 512 * 512;  // moving tiles of 512 columns
  Cost c;
  c.bytes = double(s.num_tokens) * keys * s.num_kv_heads * d * elem * 2 / cores;
  c.flops = 4.0 * kLanes * d * padded * s.num_kv_heads * s.num_tokens / cores;
  return c;
}

}  // namespace

nlohmann::json device_tables_header(const DeviceTables& t) {
  return {
      {"layout",
       "rows: one (Q tile or decode row, K/V chunk) of kv heads [kv_head, kv_head + "
       "kv_heads_per_row) per row: row_fields, then pages_per_row page ids (-1 = no page); "
       "page slot i holds keys [kv_base + i*page_size, +page_size). core_rows: rows dealt "
       "to num_cores cores, chains whole, padded with no-op rows (q_rows 0) to rows_per_core. "
       "merges: one row per split partial, reset on a tile's first split, flush on its last."},
      {"dtype", "int32"},
      {"row_fields", device_row_field_names()},
      {"merge_fields", device_merge_field_names()},
      {"flags",
       {{"reset", int{kRowReset}}, {"flush", int{kRowFlush}}, {"needs_mask", int{kRowNeedsMask}}}},
      {"pages_per_row", t.pages_per_row},
      {"row_width", t.row_width},
      {"q_tile_rows", t.config.q_tile_rows},
      {"kv_chunk_tokens", t.config.kv_chunk_tokens},
      {"split_tokens", t.config.split_tokens},
      {"kv_heads_per_row", t.config.kv_heads_per_row},
      {"num_cores", t.config.num_cores},
      {"num_kv_heads", t.shapes.num_kv_heads},
      {"heads_per_kv", t.heads_per_kv},
      {"head_dim", t.head_dim},
      {"page_size", t.shapes.page_size},
      {"num_tokens", t.shapes.num_tokens},
      {"num_rows", t.num_rows},
      {"rows_per_core", t.rows_per_core},
      {"num_merges", t.num_merges},
      {"merges_per_core", t.merges_per_core},
      {"num_partial_rows", t.num_partial_rows},
      {"partial_record", "per partial row and lane (h, g): m, l, o[head_dim] as float32"},
      {"max_rows", device_max_rows(t.shapes, t.config)},
      {"max_merges", device_max_merges(t.shapes, t.config)},
      {"max_partial_rows", device_max_partial_rows(t.shapes, t.config)}};
}

Status write_device_tables(const std::string& dir, const DeviceTables& t) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return Status::Invalid(cat("--export ", dir, ": ", error.message()));
  const std::filesystem::path root(dir);
  const int64_t cores = t.config.num_cores;
  RPA_RETURN_IF_ERROR(write_table(root, "rows.npy", t.rows, {t.num_rows, t.row_width}));
  RPA_RETURN_IF_ERROR(
      write_table(root, "core_rows.npy", t.core_rows, {cores, t.rows_per_core, t.row_width}));
  RPA_RETURN_IF_ERROR(write_table(root, "merges.npy", t.merges, {t.num_merges, kMergeFields}));
  RPA_RETURN_IF_ERROR(write_table(root, "core_merges.npy", t.core_merges,
                                  {cores, t.merges_per_core, kMergeFields}));
  const std::string text = device_tables_header(t).dump(2) + "\n";
  return cases::write_file_atomically((root / "header.json").string(),
                                      [&](std::ofstream& out) { out << text; });
}

nlohmann::json neuron_cost(const AttentionInputs& inputs, const AttentionOptions& options,
                           const DeviceTablesConfig& config, std::string* error) {
  const int64_t elem = dtype_size(inputs.k_cache.dtype), d = inputs.q.shape[3];
  nlohmann::json targets = nlohmann::json::array();
  for (const Target& target : kTargets) {
    nlohmann::json kernels = nlohmann::json::array();
    DeviceTablesConfig ours = config;
    ours.num_cores = target.cores;
    DeviceTables t;
    Status s = make_device_tables(inputs, options, &t, ours);
    if (!s.ok()) {
      *error = s.message();
      return {};
    }
    kernels.push_back(
        cost_json("capacity-masked grid", capacity_cost(t.shapes, d, elem, target.cores), target));
    // rpa's CPU sizes on the device: a row per kv head and 512 keys.
    DeviceTablesConfig fine = ours;
    fine.kv_heads_per_row = 1;
    fine.kv_chunk_tokens = static_cast<int32_t>(std::max<int64_t>(512, t.shapes.page_size));
    fine.split_tokens = 4 * fine.kv_chunk_tokens;
    DeviceTables per_head;
    s = make_device_tables(inputs, options, &per_head, fine);
    if (s.ok()) {
      kernels.push_back(cost_json("rpa tables, CPU sizes (1 kv head x 512 keys per row)",
                                  tables_cost(per_head, elem, elem), target));
    }
    kernels.push_back(cost_json("rpa device tables", tables_cost(t, elem, elem), target));
    targets.push_back({{"target", target.name},
                       {"what", target.what},
                       {"kernels", kernels},
                       {"kv_chunk_tokens", t.config.kv_chunk_tokens}});
  }
  return {{"model",
           "a MODEL, not a measurement: iterations x per-iteration overhead (7.5-18 us) + "
           "bytes / per-core HBM bandwidth + full-tile flops / Tensor Engine rate; "
           "constants and sources in docs/neuron.md"},
          {"targets", targets}};
}

void print_neuron_cost(const nlohmann::json& cost) {
  std::printf("%s\n", cost["model"].get<std::string>().c_str());
  for (const auto& target : cost["targets"]) {
    std::printf("\n%s (kv_chunk_tokens %d)\n", target["what"].get<std::string>().c_str(),
                target["kv_chunk_tokens"].get<int>());
    std::printf("  %-52s %7s %9s %8s %8s %15s\n", "kernel", "iters", "ovh ms", "hbm ms", "pe ms",
                "total ms");
    for (const auto& k : target["kernels"]) {
      std::printf("  %-52s %7lld %4.2f-%-4.2f %8.3f %8.3f %7.3f-%-7.3f\n",
                  k["kernel"].get<std::string>().c_str(),
                  static_cast<long long>(k["iterations_per_core"].get<int64_t>()),
                  k["overhead_ms"][0].get<double>(), k["overhead_ms"][1].get<double>(),
                  k["hbm_ms"].get<double>(), k["tensor_ms"].get<double>(),
                  k["total_ms"][0].get<double>(), k["total_ms"][1].get<double>());
    }
  }
}

}  // namespace rpa::cli
