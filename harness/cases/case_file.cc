#include "cases/case_file.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cases/file_io.h"
#include "cases/npy.h"
#include "cases/safetensors.h"
#include "core/message.h"

namespace rpa::cases {
namespace {

using nlohmann::json;

// The case tensors in file order, as members of Case.
struct Field {
  std::string_view name;
  HostTensor Case::*required = nullptr;
  std::optional<HostTensor> Case::*optional = nullptr;
};
constexpr Field kFields[] = {
    {"q", &Case::q},
    {"k_cache", &Case::k_cache},
    {"v_cache", &Case::v_cache},
    {"block_table", &Case::block_table},
    {"seq_lens", &Case::seq_lens},
    {"query_start_len", &Case::query_start_len},
    {"sinks", nullptr, &Case::sinks},
    {"k_scale", nullptr, &Case::k_scale},
    {"v_scale", nullptr, &Case::v_scale},
};

// Parses all of `text` as a number; a trailing unparsed character fails.
template <typename T>
bool parse_number(const std::string& text, T* value) {
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, *value);
  return error == std::errc() && ptr == end;
}

template <typename T>
std::string number_text(T value) {
  char buffer[32];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, error == std::errc() ? end : buffer);
}

// The options live in __metadata__ as strings; an absent key keeps the default.
Status options_from_metadata(const std::map<std::string, std::string>& metadata,
                             AttentionOptions* options) {
  const auto read = [&](const char* key, auto* value) -> Status {
    const auto it = metadata.find(key);
    if (it == metadata.end() || parse_number(it->second, value)) return Status::Ok();
    return Status::Invalid(cat("__metadata__ '", key, "' = \"", it->second, "\" is not a number"));
  };
  RPA_RETURN_IF_ERROR(read("scale", &options->scale));
  RPA_RETURN_IF_ERROR(read("sliding_window", &options->sliding_window));
  return read("logit_soft_cap", &options->logit_soft_cap);
}

Status load_safetensors_case(const std::string& path, Case* c) {
  SafetensorsFile file;
  RPA_RETURN_IF_ERROR(read_safetensors(path, &file));
  for (const Field& field : kFields) {
    const HostTensor* tensor = file.find(field.name);
    if (tensor != nullptr && field.required != nullptr) c->*field.required = *tensor;
    if (tensor != nullptr && field.optional != nullptr) c->*field.optional = *tensor;
    if (tensor == nullptr && field.required != nullptr) {
      return Status::Invalid(cat(path, ": missing tensor '", field.name, "'"));
    }
  }
  const Status status = options_from_metadata(file.metadata, &c->options);
  if (status.ok()) return status;
  return {status.code(), cat(path, ": ", status.message())};
}

bool fits_int32(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>() <= INT32_MAX;
  return value.is_number_integer() && value.get<int64_t>() >= INT32_MIN &&
         value.get<int64_t>() <= INT32_MAX;
}

// options.json: {"scale": 0.125, "sliding_window": 0, "logit_soft_cap": 0,
// "dtype": "bf16"}, every key optional; "dtype" says what '<u2' arrays hold.
Status read_options_json(const std::string& path, AttentionOptions* options, DType* u2_dtype,
                         bool* has_u2_dtype) {
  std::ifstream in(path);
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double is out_of_range
    // (found by fuzz/cases.cc), and nothing thrown may escape a reader.
    return Status::Invalid(cat(path, ": not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return Status::Invalid(cat(path, ": not a JSON object"));
  for (const auto& [key, value] : root.items()) {
    const bool number = value.is_number();
    if (key == "scale" && number) {
      options->scale = value.get<float>();
    } else if (key == "sliding_window" && fits_int32(value)) {
      options->sliding_window = value.get<int32_t>();
    } else if (key == "logit_soft_cap" && number) {
      options->logit_soft_cap = value.get<float>();
    } else if (key == "dtype" && value.is_string() &&
               parse_dtype(value.get<std::string>(), u2_dtype) &&
               (*u2_dtype == DType::kBF16 || *u2_dtype == DType::kF16)) {
      *has_u2_dtype = true;
    } else {
      return Status::Invalid(cat(path, ": bad entry \"", key, "\": ", value.dump(),
                                 " (expected scale, sliding_window, logit_soft_cap as numbers "
                                 "and dtype as \"bf16\" or \"f16\")"));
    }
  }
  return Status::Ok();
}

Status tensor_from_npy(const std::string& path, NpyArray array, bool has_u2_dtype, DType u2_dtype,
                       HostTensor* tensor) {
  if (array.descr == "<f4") tensor->dtype = DType::kF32;
  if (array.descr == "<f2") tensor->dtype = DType::kF16;
  if (array.descr == "<i4") tensor->dtype = DType::kI32;
  if (array.descr == "|u1") tensor->dtype = DType::kF8E4M3;  // NumPy has no fp8: raw bytes
  if (array.descr == "<u2") {
    if (!has_u2_dtype) {
      return Status::Invalid(cat(path,
                                 ": '<u2' holds raw 16-bit floats; say which with "
                                 "\"dtype\": \"bf16\" or \"f16\" in options.json"));
    }
    tensor->dtype = u2_dtype;
  }
  tensor->shape = std::move(array.shape);
  tensor->bytes = std::move(array.bytes);
  return Status::Ok();
}

Status load_npy_case(const std::string& dir, Case* c) {
  const std::filesystem::path root(dir);
  DType u2_dtype = DType::kBF16;
  bool has_u2_dtype = false;
  const std::filesystem::path options_path = root / "options.json";
  std::error_code error;
  if (std::filesystem::exists(options_path, error)) {
    RPA_RETURN_IF_ERROR(
        read_options_json(options_path.string(), &c->options, &u2_dtype, &has_u2_dtype));
  }
  for (const Field& field : kFields) {
    const std::filesystem::path path = root / cat(field.name, ".npy");
    if (!std::filesystem::exists(path, error)) {
      if (field.required == nullptr) continue;
      return Status::Invalid(cat(dir, ": missing ", field.name, ".npy"));
    }
    NpyArray array;
    RPA_RETURN_IF_ERROR(read_npy(path.string(), &array));
    HostTensor tensor;
    RPA_RETURN_IF_ERROR(
        tensor_from_npy(path.string(), std::move(array), has_u2_dtype, u2_dtype, &tensor));
    if (field.required != nullptr) c->*field.required = std::move(tensor);
    if (field.optional != nullptr) c->*field.optional = std::move(tensor);
  }
  return Status::Ok();
}

std::string_view npy_descr(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "<f4";
    case DType::kBF16:
      return "<u2";
    case DType::kF16:
      return "<f2";
    case DType::kI32:
      return "<i4";
    case DType::kF8E4M3:
      return "|u1";
  }
  return "";
}

// Calls `visit(name, tensor)` for every tensor the case holds, in file order.
template <typename Visit>
void for_each_tensor(const Case& c, Visit visit) {
  for (const Field& field : kFields) {
    if (field.required != nullptr) visit(field.name, c.*field.required);
    if (field.optional != nullptr && (c.*field.optional).has_value()) {
      visit(field.name, *(c.*field.optional));
    }
  }
}

}  // namespace

Status Case::inputs(AttentionInputs* inputs) const {
  AttentionInputs in;
  RPA_RETURN_IF_ERROR(q.view("q", &in.q));
  RPA_RETURN_IF_ERROR(k_cache.view("k_cache", &in.k_cache));
  RPA_RETURN_IF_ERROR(v_cache.view("v_cache", &in.v_cache));
  RPA_RETURN_IF_ERROR(block_table.view("block_table", &in.block_table));
  RPA_RETURN_IF_ERROR(seq_lens.view("seq_lens", &in.seq_lens));
  RPA_RETURN_IF_ERROR(query_start_len.view("query_start_len", &in.query_start_len));
  if (sinks) RPA_RETURN_IF_ERROR(sinks->view("sinks", &in.sinks));
  if (k_scale) RPA_RETURN_IF_ERROR(k_scale->view("k_scale", &in.k_scale));
  if (v_scale) RPA_RETURN_IF_ERROR(v_scale->view("v_scale", &in.v_scale));
  *inputs = in;
  return Status::Ok();
}

Status load_case(const std::string& path, Case* result) {
  Case c;
  std::error_code error;
  const Status status = std::filesystem::is_directory(path, error)
                            ? load_npy_case(path, &c)
                            : load_safetensors_case(path, &c);
  if (status.ok()) *result = std::move(c);
  return status;
}

Case make_case(const AttentionInputs& inputs, const AttentionOptions& options) {
  Case c;
  c.q = HostTensor::copy_of(inputs.q);
  c.k_cache = HostTensor::copy_of(inputs.k_cache);
  c.v_cache = HostTensor::copy_of(inputs.v_cache);
  c.block_table = HostTensor::copy_of(inputs.block_table);
  c.seq_lens = HostTensor::copy_of(inputs.seq_lens);
  c.query_start_len = HostTensor::copy_of(inputs.query_start_len);
  if (inputs.sinks.present()) c.sinks = HostTensor::copy_of(inputs.sinks);
  if (inputs.k_scale.present()) c.k_scale = HostTensor::copy_of(inputs.k_scale);
  if (inputs.v_scale.present()) c.v_scale = HostTensor::copy_of(inputs.v_scale);
  c.options = options;
  return c;
}

Status save_case(const std::string& path, const Case& c) {
  SafetensorsFile file;
  for_each_tensor(c, [&](std::string_view name, const HostTensor& tensor) {
    file.tensors.emplace_back(std::string(name), tensor);
  });
  // Only options that differ from the defaults are written: absent = default.
  if (c.options.scale != 0.0f) file.metadata["scale"] = number_text(c.options.scale);
  if (c.options.sliding_window != 0) {
    file.metadata["sliding_window"] = number_text(c.options.sliding_window);
  }
  if (c.options.logit_soft_cap != 0.0f) {
    file.metadata["logit_soft_cap"] = number_text(c.options.logit_soft_cap);
  }
  return write_safetensors(path, file);
}

Status save_case_npy(const std::string& dir, const Case& c) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return Status::Invalid(cat("cannot create directory '", dir, "': ", error.message()));
  const std::filesystem::path root(dir);
  json options = {{"sliding_window", c.options.sliding_window},
                  {"logit_soft_cap", c.options.logit_soft_cap}};
  if (c.options.scale != 0.0f) options["scale"] = c.options.scale;
  bool any_bf16 = false;
  for_each_tensor(c, [&](std::string_view, const HostTensor& t) {
    any_bf16 = any_bf16 || t.dtype == DType::kBF16;
  });
  if (any_bf16) options["dtype"] = "bf16";
  Status status;
  for_each_tensor(c, [&](std::string_view name, const HostTensor& tensor) {
    if (!status.ok()) return;
    status = write_npy((root / cat(name, ".npy")).string(),
                       NpyArray{std::string(npy_descr(tensor.dtype)), tensor.shape, tensor.bytes});
  });
  RPA_RETURN_IF_ERROR(status);
  const std::string text = options.dump(2) + "\n";
  return write_file_atomically((root / "options.json").string(),
                               [&](std::ofstream& out) { out << text; });
}

}  // namespace rpa::cases
