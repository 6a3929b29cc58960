#include "cases/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cases/file_io.h"
#include "core/message.h"

namespace rpa::cases {
namespace {

using nlohmann::json;

struct DTypeName {
  DType dtype;
  std::string_view name;
};
constexpr DTypeName kDTypeNames[] = {
    {DType::kF32, "F32"}, {DType::kBF16, "BF16"},       {DType::kF16, "F16"},
    {DType::kI32, "I32"}, {DType::kF8E4M3, "F8_E4M3"},
};

std::string_view safetensors_name(DType dtype) {
  for (const DTypeName& entry : kDTypeNames) {
    if (entry.dtype == dtype) return entry.name;
  }
  return "?";
}

// One header entry, before its data is read.
struct Entry {
  std::string name;
  HostTensor tensor;  // dtype and shape; bytes still empty
  int64_t begin = 0;
  int64_t end = 0;
};

std::string range(int64_t begin, int64_t end) { return cat("[", begin, ", ", end, ")"); }

// A non-negative integer that fits int64 (nlohmann stores those as unsigned).
bool as_extent(const json& value, int64_t* out) {
  if (!value.is_number_unsigned()) return false;
  const auto v = value.get<uint64_t>();
  if (v > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

Status parse_entry(const std::string& name, const json& value, Entry* entry) {
  const std::string where = cat("tensor '", name, "'");
  if (!value.is_object()) return Status::Invalid(cat(where, ": header entry is not an object"));
  const auto dtype = value.find("dtype");
  const auto shape = value.find("shape");
  const auto offsets = value.find("data_offsets");
  if (dtype == value.end() || !dtype->is_string()) {
    return Status::Invalid(cat(where, ": 'dtype' is missing or not a string"));
  }
  const std::string dtype_text = dtype->get<std::string>();
  const auto known = std::find_if(std::begin(kDTypeNames), std::end(kDTypeNames),
                                  [&](const DTypeName& d) { return d.name == dtype_text; });
  if (known == std::end(kDTypeNames)) {
    return Status::Invalid(cat(where, ": dtype \"", dtype_text,
                               "\" is not supported (rpa reads F32, BF16, F16 and I32)"));
  }
  entry->name = name;
  entry->tensor.dtype = known->dtype;
  if (shape == value.end() || !shape->is_array()) {
    return Status::Invalid(cat(where, ": 'shape' is missing or not an array"));
  }
  int64_t bytes = dtype_size(known->dtype);
  for (const json& extent : *shape) {
    int64_t e = 0;
    if (!as_extent(extent, &e)) {
      return Status::Invalid(
          cat(where, ": shape entry ", extent.dump(), " is not a non-negative integer"));
    }
    if (e != 0 && __builtin_mul_overflow(bytes, e, &bytes)) {
      return Status::Invalid(cat(where, ": shape ", shape->dump(), " overflows int64 bytes"));
    }
    entry->tensor.shape.push_back(e);
  }
  if (entry->tensor.numel() == 0) bytes = 0;
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !as_extent((*offsets)[0], &entry->begin) || !as_extent((*offsets)[1], &entry->end)) {
    return Status::Invalid(
        cat(where, ": 'data_offsets' must be two non-negative integers [begin, end]"));
  }
  if (entry->begin > entry->end) {
    return Status::Invalid(
        cat(where, ": data_offsets ", range(entry->begin, entry->end), " end before they begin"));
  }
  if (entry->end - entry->begin != bytes) {
    return Status::Invalid(cat(where, ": shape ", shape->dump(), " of ", dtype_text, " needs ",
                               bytes, " bytes but data_offsets ", range(entry->begin, entry->end),
                               " hold ", entry->end - entry->begin));
  }
  return Status::Ok();
}

Status parse_metadata(const json& value, std::map<std::string, std::string>* metadata) {
  if (!value.is_object()) return Status::Invalid("'__metadata__' is not an object");
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) {
      return Status::Invalid(cat("__metadata__ '", key, "' is ", text.dump(),
                                 "; safetensors metadata values must be strings"));
    }
    (*metadata)[key] = text.get<std::string>();
  }
  return Status::Ok();
}

// The byte ranges, sorted by begin, must tile [0, data_size) exactly.
Status check_layout(std::vector<Entry>& entries, int64_t data_size) {
  for (const Entry& e : entries) {
    if (e.end > data_size) {
      return Status::Invalid(cat("tensor '", e.name, "': data_offsets ", range(e.begin, e.end),
                                 " run past the end of the data (", data_size,
                                 " bytes): the file is truncated"));
    }
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  int64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected) {
      return Status::Invalid(cat("tensors '", previous->name, "' ",
                                 range(previous->begin, previous->end), " and '", e.name, "' ",
                                 range(e.begin, e.end), " overlap"));
    }
    if (e.begin > expected) {
      return Status::Invalid(cat("data bytes ", range(expected, e.begin),
                                 " belong to no tensor (before tensor '", e.name, "')"));
    }
    expected = e.end;
    previous = &e;
  }
  if (expected != data_size) {
    return Status::Invalid(cat(data_size - expected, " trailing data bytes after the last tensor ",
                               "(data ends at ", expected, " of ", data_size, ")"));
  }
  return Status::Ok();
}

Status read_stream(std::istream& in, int64_t size, SafetensorsFile* file) {
  if (size < 8) {
    return Status::Invalid(
        cat("file is ", size, " bytes: too short for the 8-byte header length of safetensors"));
  }
  uint8_t length_bytes[8];
  RPA_RETURN_IF_ERROR(read_at(in, 0, 8, length_bytes));
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
  if (header_length > static_cast<uint64_t>(size - 8)) {
    return Status::Invalid(cat("header length ", header_length, " runs past the end of the file (",
                               size, " bytes): truncated, or not a safetensors file"));
  }
  std::string header(header_length, '\0');
  RPA_RETURN_IF_ERROR(read_at(in, 8, static_cast<int64_t>(header_length), header.data()));

  json root;
  try {
    root = json::parse(header);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double is out_of_range
    // (found by fuzz/cases.cc), and nothing thrown may escape a reader.
    return Status::Invalid(cat("header is not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return Status::Invalid("header JSON is not an object");

  std::vector<Entry> entries;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      RPA_RETURN_IF_ERROR(parse_metadata(value, &file->metadata));
      continue;
    }
    entries.emplace_back();
    RPA_RETURN_IF_ERROR(parse_entry(name, value, &entries.back()));
  }
  const int64_t data_start = 8 + static_cast<int64_t>(header_length);
  RPA_RETURN_IF_ERROR(check_layout(entries, size - data_start));
  for (Entry& e : entries) {
    e.tensor.bytes.resize(static_cast<size_t>(e.end - e.begin));
    RPA_RETURN_IF_ERROR(read_at(in, data_start + e.begin, e.end - e.begin, e.tensor.bytes.data()));
    file->tensors.emplace_back(std::move(e.name), std::move(e.tensor));
  }
  return Status::Ok();
}

}  // namespace

const HostTensor* SafetensorsFile::find(std::string_view name) const {
  for (const auto& [n, tensor] : tensors) {
    if (n == name) return &tensor;
  }
  return nullptr;
}

Status read_safetensors(std::istream& in, int64_t size, SafetensorsFile* file) {
  *file = SafetensorsFile{};
  return read_stream(in, size, file);
}

Status read_safetensors(const std::string& path, SafetensorsFile* file) {
  std::ifstream in;
  int64_t size = 0;
  Status status = open_for_reading(path, &in, &size);
  if (status.ok()) status = read_safetensors(in, size, file);
  if (status.ok()) return status;
  // Every message names the file, so a CLI can print it alone.
  return {status.code(), cat(path, ": ", status.message())};
}

Status write_safetensors(const std::string& path, const SafetensorsFile& file) {
  json header = json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  int64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    const auto bytes = static_cast<int64_t>(tensor.bytes.size());
    header[name] = {{"dtype", safetensors_name(tensor.dtype)},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return write_file_atomically(path, [&](std::ofstream& out) {
    uint8_t length_bytes[8];
    for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<uint8_t>(text.size() >> (8 * i));
    out.write(reinterpret_cast<const char*>(length_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, tensor] : file.tensors) {
      out.write(reinterpret_cast<const char*>(tensor.bytes.data()),
                static_cast<std::streamsize>(tensor.bytes.size()));
    }
  });
}

}  // namespace rpa::cases
