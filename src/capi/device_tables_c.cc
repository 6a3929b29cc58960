// rpa_device_tables: the device tables (include/rpa/device_tables.h) behind
// an opaque handle, so C callers get the int32 arrays without C++ vectors.
#include <cstring>
#include <memory>

#include "capi/convert.h"
#include "capi/errors.h"
#include "core/message.h"
#include "rpa/device_tables.h"

struct rpa_device_tables {
  rpa::DeviceTables tables;
};

namespace rpa::capi {
namespace {

DeviceTablesConfig to_config(const rpa_device_tables_config* c) {
  DeviceTablesConfig config;
  if (c == nullptr) return config;
  config.q_tile_rows = c->q_tile_rows;
  config.kv_chunk_tokens = c->kv_chunk_tokens;
  config.split_tokens = c->split_tokens;
  config.kv_heads_per_row = c->kv_heads_per_row;
  config.num_cores = c->num_cores == 0 ? 2 : c->num_cores;
  return config;
}

Status create(const rpa_attention_inputs& c_inputs, const rpa_options* c_options,
              const rpa_device_tables_config* c_config, rpa_device_tables* out) {
  AttentionInputs inputs;
  AttentionOptions options;
  RunConfig run_config;
  RPA_RETURN_IF_ERROR(to_inputs(c_inputs, &inputs));
  RPA_RETURN_IF_ERROR(to_options(c_options, &options, &run_config));
  return make_device_tables(inputs, options, &out->tables, to_config(c_config));
}

}  // namespace
}  // namespace rpa::capi

using rpa::capi::guarded;

extern "C" {

rpa_status rpa_device_tables_create(const rpa_attention_inputs* inputs, const rpa_options* options,
                                    const rpa_device_tables_config* config,
                                    rpa_device_tables** tables) {
  return guarded([&] {
    if (inputs == nullptr || tables == nullptr) {
      return rpa::Status::Invalid("rpa_device_tables_create: inputs and tables must not be NULL");
    }
    *tables = nullptr;
    auto created = std::make_unique<rpa_device_tables>();
    RPA_RETURN_IF_ERROR(rpa::capi::create(*inputs, options, config, created.get()));
    *tables = created.release();
    return rpa::Status::Ok();
  });
}

rpa_status rpa_device_tables_get_info(const rpa_device_tables* tables,
                                      rpa_device_tables_info* info) {
  return guarded([&] {
    if (tables == nullptr || info == nullptr) {
      return rpa::Status::Invalid("rpa_device_tables_get_info: tables and info must not be NULL");
    }
    const rpa::DeviceTables& t = tables->tables;
    rpa_device_tables_info i = {};
    i.row_fields = rpa::kRowFields;
    i.pages_per_row = t.pages_per_row;
    i.row_width = t.row_width;
    i.merge_fields = rpa::kMergeFields;
    i.config = {t.config.q_tile_rows, t.config.kv_chunk_tokens, t.config.split_tokens,
                t.config.kv_heads_per_row, t.config.num_cores};
    i.num_rows = t.num_rows;
    i.rows_per_core = t.rows_per_core;
    i.num_merges = t.num_merges;
    i.merges_per_core = t.merges_per_core;
    i.num_partial_rows = t.num_partial_rows;
    i.max_rows = rpa::device_max_rows(t.shapes, t.config);
    i.max_merges = rpa::device_max_merges(t.shapes, t.config);
    i.max_partial_rows = rpa::device_max_partial_rows(t.shapes, t.config);
    *info = i;
    return rpa::Status::Ok();
  });
}

rpa_status rpa_device_tables_get(const rpa_device_tables* tables, rpa_device_table which,
                                 const int32_t** data, int64_t* count) {
  return guarded([&] {
    if (tables == nullptr || data == nullptr || count == nullptr) {
      return rpa::Status::Invalid("rpa_device_tables_get: tables, data and count must not be NULL");
    }
    const rpa::DeviceTables& t = tables->tables;
    // A C caller may pass any int: read it as one (loading an out-of-range
    // value as the enum type is undefined in C++).
    static_assert(sizeof(which) == sizeof(int));
    int raw = 0;
    std::memcpy(&raw, &which, sizeof raw);
    const std::vector<int32_t>* table = nullptr;
    switch (raw) {
      case RPA_TABLE_ROWS:
        table = &t.rows;
        break;
      case RPA_TABLE_CORE_ROWS:
        table = &t.core_rows;
        break;
      case RPA_TABLE_MERGES:
        table = &t.merges;
        break;
      case RPA_TABLE_CORE_MERGES:
        table = &t.core_merges;
        break;
    }
    if (table == nullptr) {
      return rpa::Status::Invalid(rpa::cat("rpa_device_tables_get: which = ",
                                           raw, " is not an rpa_device_table"));
    }
    *data = table->data();
    *count = static_cast<int64_t>(table->size());
    return rpa::Status::Ok();
  });
}

void rpa_device_tables_destroy(rpa_device_tables* tables) { delete tables; }

}  // extern "C"
