// `rpa plan --export` and `--neuron-cost`: the device tables
// (include/rpa/device_tables.h) written as .npy files with a JSON header,
// and a labelled cost MODEL of running them on a NeuronCore.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "rpa/device_tables.h"

namespace rpa::cli {

// The header describing the tables' layout, sizes and bounds.
nlohmann::json device_tables_header(const DeviceTables& tables);

// Writes rows.npy, core_rows.npy, merges.npy, core_merges.npy (int32) and
// header.json into `dir`, creating it.
Status write_device_tables(const std::string& dir, const DeviceTables& tables);

// The cost model for Inf2 (one NeuronCore-v2) and Trn2 (LNC=2, two
// NeuronCore-v3): our tables vs the capacity-masked grid and vs rows of
// rpa's CPU sizes. A model, not a measurement: docs/neuron.md. On error
// returns null and sets `error`.
nlohmann::json neuron_cost(const AttentionInputs& inputs, const AttentionOptions& options,
                           const DeviceTablesConfig& config, std::string* error);

// The model as a table on stdout.
void print_neuron_cost(const nlohmann::json& cost);

}  // namespace rpa::cli
