#include "cases/npy.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "cases/file_io.h"
#include "core/message.h"

namespace rpa::cases {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

int64_t item_size(std::string_view descr) {
  if (descr == "<f4" || descr == "<i4") return 4;
  if (descr == "<f2" || descr == "<u2") return 2;
  if (descr == "|u1") return 1;
  return 0;
}

// The header is a Python dict literal; this reads just the three keys NumPy
// writes, each as `'key': value`, with either quote style.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  // Moves to the value of `key`; false when the key is absent.
  bool seek(std::string_view key) {
    for (const char quote : {'\'', '"'}) {
      const std::string quoted = cat(quote, key, quote);
      const size_t at = text_.find(quoted);
      if (at == std::string_view::npos) continue;
      pos_ = at + quoted.size();
      skip_spaces();
      if (!consume(':')) return false;
      skip_spaces();
      return true;
    }
    return false;
  }

  bool read_string(std::string* out) {
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return false;
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) return false;
    *out = std::string(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return true;
  }

  bool read_bool(bool* out) {
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      if (text_.substr(pos_).starts_with(word)) {
        pos_ += std::string_view(word).size();
        *out = value;
        return true;
      }
    }
    return false;
  }

  // A tuple of non-negative integers: "()", "(5,)", "(2, 3)".
  bool read_shape(std::vector<int64_t>* shape) {
    if (!consume('(')) return false;
    for (;;) {
      skip_spaces();
      if (consume(')')) return true;
      if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        return false;
      }
      int64_t extent = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        if (__builtin_mul_overflow(extent, 10, &extent) ||
            __builtin_add_overflow(extent, text_[pos_++] - '0', &extent)) {
          return false;
        }
      }
      shape->push_back(extent);
      skip_spaces();
      if (!consume(',') && !(pos_ < text_.size() && text_[pos_] == ')')) return false;
    }
  }

 private:
  void skip_spaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }
  bool consume(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

Status parse_header(std::string_view header, NpyArray* array) {
  HeaderParser parser(header);
  if (!parser.seek("descr") || !parser.read_string(&array->descr)) {
    return Status::Invalid("header has no readable 'descr'");
  }
  if (item_size(array->descr) == 0) {
    return Status::Invalid(cat("dtype '", array->descr,
                               "' is not supported (rpa reads '<f4', '<f2', '<i4', '<u2' and '|u1' "
                               "for bf16 bits)"));
  }
  bool fortran = false;
  if (!parser.seek("fortran_order") || !parser.read_bool(&fortran)) {
    return Status::Invalid("header has no readable 'fortran_order'");
  }
  if (!parser.seek("shape") || !parser.read_shape(&array->shape)) {
    return Status::Invalid("header has no readable 'shape'");
  }
  if (fortran && array->shape.size() > 1) {
    return Status::Invalid("Fortran-order arrays are not supported: save with C order");
  }
  return Status::Ok();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t d = 0; d < shape.size(); ++d) {
    text += cat(d == 0 ? "" : ", ", shape[d]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

Status read_file(const std::string& path, NpyArray* array) {
  std::ifstream in;
  int64_t size = 0;
  RPA_RETURN_IF_ERROR(open_for_reading(path, &in, &size));
  uint8_t preamble[12] = {};
  if (size < 10) return Status::Invalid(cat("file is ", size, " bytes: too short for .npy"));
  RPA_RETURN_IF_ERROR(read_at(in, 0, std::min<int64_t>(size, 12), preamble));
  if (std::string_view(reinterpret_cast<const char*>(preamble), kMagic.size()) != kMagic) {
    return Status::Invalid("not a .npy file (bad magic)");
  }
  const int major = preamble[6];
  if (major < 1 || major > 3) return Status::Invalid(cat(".npy version ", major, " is unknown"));
  // Version 1 stores the header length in 2 bytes, versions 2 and 3 in 4.
  const int64_t length_bytes = major == 1 ? 2 : 4;
  if (size < 8 + length_bytes) return Status::Invalid("file is truncated inside the preamble");
  int64_t header_length = 0;
  for (int64_t i = length_bytes - 1; i >= 0; --i) {
    header_length = (header_length << 8) | preamble[8 + i];
  }
  const int64_t data_start = 8 + length_bytes + header_length;
  if (data_start > size) {
    return Status::Invalid(
        cat("header length ", header_length, " runs past the end of the file (", size, " bytes)"));
  }
  std::string header(static_cast<size_t>(header_length), '\0');
  RPA_RETURN_IF_ERROR(read_at(in, 8 + length_bytes, header_length, header.data()));
  RPA_RETURN_IF_ERROR(parse_header(header, array));

  int64_t bytes = item_size(array->descr);
  for (int64_t extent : array->shape) {
    if (__builtin_mul_overflow(bytes, extent, &bytes)) {
      return Status::Invalid(cat("shape ", shape_text(array->shape), " overflows int64 bytes"));
    }
  }
  if (bytes != size - data_start) {
    return Status::Invalid(cat("shape ", shape_text(array->shape), " of '", array->descr,
                               "' needs ", bytes, " data bytes but the file holds ",
                               size - data_start, bytes > size - data_start ? ": truncated" : ""));
  }
  array->bytes.resize(static_cast<size_t>(bytes));
  return read_at(in, data_start, bytes, array->bytes.data());
}

}  // namespace

Status read_npy(const std::string& path, NpyArray* array) {
  *array = NpyArray{};
  const Status status = read_file(path, array);
  if (status.ok()) return status;
  return {status.code(), cat(path, ": ", status.message())};
}

Status write_npy(const std::string& path, const NpyArray& array) {
  std::string header = cat("{'descr': '", array.descr,
                           "', 'fortran_order': False, 'shape': ", shape_text(array.shape), ", }");
  // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  return write_file_atomically(path, [&](std::ofstream& out) {
    out.write(kMagic.data(), static_cast<std::streamsize>(kMagic.size()));
    const char version_and_length[4] = {1, 0, static_cast<char>(header.size() & 0xff),
                                        static_cast<char>(header.size() >> 8)};
    out.write(version_and_length, 4);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(array.bytes.data()),
              static_cast<std::streamsize>(array.bytes.size()));
  });
}

}  // namespace rpa::cases
