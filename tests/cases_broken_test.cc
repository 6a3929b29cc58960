// Every class of broken safetensors file gets a clear error, never a crash:
// truncation, a header length past the end, bad JSON, unknown dtypes, shapes
// that disagree with their bytes, offsets past the end, overlapping, reversed
// or leaving gaps, trailing bytes. A sweep of truncations and header byte flips
// of a real case file checks that nothing else slips through (run it under ASan).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "cases/case_file.h"
#include "cases/safetensors.h"
#include "generate/batch.h"

namespace rpa::cases {
namespace {

namespace fs = std::filesystem;

std::string scratch(const std::string& name) {
  return (fs::temp_directory_path() / ("rpa_broken_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// A file of the 8-byte length of `header`, `header`, then `data_bytes` zeros.
std::string file_with(const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header + std::string(data_bytes, '\0');
}

Status read_bytes(const std::string& bytes, SafetensorsFile* file) {
  std::istringstream in(bytes);
  return read_safetensors(in, static_cast<int64_t>(bytes.size()), file);
}

void expect_error(const std::string& bytes, const std::string& needle) {
  SafetensorsFile file;
  const Status s = read_bytes(bytes, &file);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << needle;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

TEST(BrokenSafetensors, ValidTinyFileReads) {
  SafetensorsFile file;
  const Status s =
      read_bytes(file_with(R"({"__metadata__":{"scale":"0.5"},)"
                           R"("b":{"dtype":"I32","shape":[2],"data_offsets":[24,32]},)"
                           R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
                           32),
                 &file);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.tensors[0].first, "a");  // in data order, whatever the header order
  EXPECT_EQ(file.metadata.at("scale"), "0.5");
}

TEST(BrokenSafetensors, EachClassHasItsMessage) {
  const std::string a = R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
  expect_error("abc", "too short for the 8-byte header length");
  expect_error(file_with("{}", 0).substr(0, 9), "runs past the end of the file");
  std::string huge = file_with("{}", 0);
  huge[7] = '\x7f';
  expect_error(huge, "header length 9151314442816847874 runs past the end");
  expect_error(file_with("{\"a\": [1,", 0), "header is not valid JSON");
  expect_error(file_with("[1, 2]", 0), "header JSON is not an object");
  expect_error(file_with(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8),
               "tensor 'a': dtype \"F64\" is not supported");
  expect_error(file_with(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20),
               "tensor 'a': shape [2,3] of F32 needs 24 bytes but data_offsets [0, 20) hold 20");
  expect_error(file_with("{" + a + "}", 16), "data_offsets [0, 24) run past the end of the data");
  expect_error(file_with("{" + a + "}", 16), "truncated");
  expect_error(file_with("{" + a + "}", 30), "6 trailing data bytes");
  expect_error(
      file_with("{" + a + R"(,"b":{"dtype":"I32","shape":[2],"data_offsets":[20,28]}})", 28),
      "tensors 'a' [0, 24) and 'b' [20, 28) overlap");
  expect_error(
      file_with("{" + a + R"(,"b":{"dtype":"I32","shape":[2],"data_offsets":[28,36]}})", 36),
      "data bytes [24, 28) belong to no tensor");
  expect_error(file_with(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
               "end before they begin");
  expect_error(file_with(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
               "shape entry -2 is not a non-negative integer");
  expect_error(file_with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
               "'data_offsets' must be two non-negative integers");
  expect_error(file_with(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4),
               "'dtype' is missing or not a string");
  expect_error(file_with(R"({"a":{"dtype":"F32","shape":[4611686018427387904, 4],)"
                         R"("data_offsets":[0,4]}})",
                         4),
               "overflows int64 bytes");
  expect_error(file_with(R"({"__metadata__":{"scale":0.5}})", 0),
               "__metadata__ 'scale' is 0.5; safetensors metadata values must be strings");
  expect_error(file_with(R"({"a":7})", 0), "tensor 'a': header entry is not an object");
}

TEST(BrokenSafetensors, MissingFileAndDirectory) {
  SafetensorsFile file;
  Status s = read_safetensors(scratch("does_not_exist"), &file);
  EXPECT_NE(s.message().find("cannot read"), std::string::npos) << s.message();
  s = read_safetensors(fs::temp_directory_path().string(), &file);
  EXPECT_NE(s.message().find("is a directory"), std::string::npos) << s.message();
}

// Found by fuzz/cases.cc: JSON numbers too large for a double throw
// nlohmann's out_of_range, not parse_error, and escaped the readers (abort).
TEST(BrokenSafetensors, NumberOverflowInTheJsonIsAStatus) {
  SafetensorsFile file;
  const Status s = read_bytes(file_with("{\"a\": 5e33656}", 0), &file);
  EXPECT_NE(s.message().find("not valid JSON"), std::string::npos) << s.message();
  const std::string dir = scratch("overflow_case");
  fs::create_directories(dir);
  std::ofstream(fs::path(dir) / "options.json") << "{\"scale\": 1e999}";
  Case c;
  const Status o = load_case(dir, &c);
  EXPECT_NE(o.message().find("not valid JSON"), std::string::npos) << o.message();
  fs::remove_all(dir);
}

// Truncations at every header byte and through the data, and random header
// byte flips, of a real case file: each either loads or fails with a message,
// and never crashes.
TEST(BrokenSafetensors, TruncationsAndFlipsNeverCrash) {
  gen::BatchSpec spec;
  spec.batch_capacity = 3;
  spec.num_active = 2;
  spec.max_context = 20;
  spec.max_prompt = 8;
  spec.max_chunk = 4;
  spec.sinks = true;
  spec.num_kv_heads = 1;
  spec.heads_per_kv = 1;
  spec.spare_pages = 1;
  spec.token_padding = 1;
  const gen::Batch batch = gen::generate(spec);
  const std::string path = scratch("case.safetensors");
  ASSERT_TRUE(save_case(path, make_case(batch.inputs(), spec.options)).ok());
  std::ifstream in(path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  fs::remove(path);

  const auto load_bytes = [&](const std::string& bytes) {
    SafetensorsFile file;
    const Status s = read_bytes(bytes, &file);
    EXPECT_TRUE(s.ok() || !s.message().empty());
    return s.ok();
  };
  // Every length through the header, then a coarse stride through the data.
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | uint8_t(good[i]);
  for (size_t length = 0; length < good.size(); length += length < 8 + header_length ? 1 : 61) {
    EXPECT_FALSE(load_bytes(good.substr(0, length))) << "truncated to " << length;
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<size_t> in_header(0, 8 + header_length - 1);
  for (int flip = 0; flip < 5000; ++flip) {
    std::string bytes = good;
    bytes[in_header(rng)] ^= static_cast<char>(1 << (flip % 8));
    load_bytes(bytes);
  }
}

}  // namespace
}  // namespace rpa::cases
