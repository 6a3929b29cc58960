// Case files round-trip exactly (safetensors and .npy directories, every
// dtype, options and optional tensors), and case-level mistakes (a missing
// tensor, a bad option, raw 16-bit bits with no dtype) give clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cases/case_file.h"
#include "cases/npy.h"
#include "cases/safetensors.h"
#include "generate/batch.h"

namespace rpa::cases {
namespace {

namespace fs = std::filesystem;

class CaseFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("rpa_cases_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

Case generated_case(DType dtype, bool sinks) {
  gen::BatchSpec spec;
  spec.seed = 3;
  spec.dtype = dtype;
  spec.out_dtype = dtype;
  spec.batch_capacity = 6;
  spec.num_active = 4;
  spec.max_context = 60;
  spec.sinks = sinks;
  spec.options.sliding_window = 17;
  spec.options.logit_soft_cap = 30.5f;
  spec.options.scale = 0.1f;
  const gen::Batch batch = gen::generate(spec);
  return make_case(batch.inputs(), spec.options);
}

void expect_same(const HostTensor& a, const HostTensor& b, const char* name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.bytes, b.bytes);  // bitwise: NaN poison and garbage survive too
}

void expect_same(const Case& a, const Case& b) {
  expect_same(a.q, b.q, "q");
  expect_same(a.k_cache, b.k_cache, "k_cache");
  expect_same(a.v_cache, b.v_cache, "v_cache");
  expect_same(a.block_table, b.block_table, "block_table");
  expect_same(a.seq_lens, b.seq_lens, "seq_lens");
  expect_same(a.query_start_len, b.query_start_len, "query_start_len");
  ASSERT_EQ(a.sinks.has_value(), b.sinks.has_value());
  if (a.sinks) expect_same(*a.sinks, *b.sinks, "sinks");
  EXPECT_EQ(a.options.scale, b.options.scale);
  EXPECT_EQ(a.options.sliding_window, b.options.sliding_window);
  EXPECT_EQ(a.options.logit_soft_cap, b.options.logit_soft_cap);
}

TEST_F(CaseFiles, RoundTripEveryDtypeBothFormats) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (bool sinks : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + (sinks ? " with sinks" : ""));
      const Case original = generated_case(dtype, sinks);
      Case loaded;
      ASSERT_TRUE(save_case(path("c.safetensors"), original).ok());
      const Status s = load_case(path("c.safetensors"), &loaded);
      ASSERT_TRUE(s.ok()) << s.message();
      expect_same(original, loaded);

      fs::remove_all(path("npy"));
      ASSERT_TRUE(save_case_npy(path("npy"), original).ok());
      Case from_npy;
      const Status n = load_case(path("npy"), &from_npy);
      ASSERT_TRUE(n.ok()) << n.message();
      expect_same(original, from_npy);
    }
  }
}

TEST_F(CaseFiles, DefaultOptionsAreAbsentFromMetadata) {
  Case c = generated_case(DType::kF32, false);
  c.options = AttentionOptions{};
  ASSERT_TRUE(save_case(path("c.safetensors"), c).ok());
  SafetensorsFile file;
  ASSERT_TRUE(read_safetensors(path("c.safetensors"), &file).ok());
  EXPECT_TRUE(file.metadata.empty());
  // Data starts 8-byte aligned: the header length is a multiple of 8.
  std::ifstream in(path("c.safetensors"), std::ios::binary);
  uint64_t header_length = 0;
  in.read(reinterpret_cast<char*>(&header_length), 8);
  EXPECT_EQ(header_length % 8, 0u);
}

TEST_F(CaseFiles, LoadedCaseRunsLikeTheOriginal) {
  const Case c = generated_case(DType::kBF16, true);
  ASSERT_TRUE(save_case(path("c.safetensors"), c).ok());
  Case loaded;
  ASSERT_TRUE(load_case(path("c.safetensors"), &loaded).ok());
  AttentionInputs inputs;
  ASSERT_TRUE(loaded.inputs(&inputs).ok());
  std::vector<float> out(static_cast<size_t>(loaded.q.numel()));
  AttentionOutputs outputs;
  outputs.out = TensorView::contiguous(out.data(), DType::kF32,
                                       {c.q.shape[0], c.q.shape[1], c.q.shape[2], c.q.shape[3]});
  const Status s = attention(inputs, loaded.options, outputs);
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST_F(CaseFiles, MissingTensorIsNamed) {
  const Case c = generated_case(DType::kF32, false);
  SafetensorsFile file;
  ASSERT_TRUE(save_case(path("c.safetensors"), c).ok());
  ASSERT_TRUE(read_safetensors(path("c.safetensors"), &file).ok());
  std::erase_if(file.tensors, [](const auto& t) { return t.first == "seq_lens"; });
  ASSERT_TRUE(write_safetensors(path("d.safetensors"), file).ok());
  Case loaded;
  const Status s = load_case(path("d.safetensors"), &loaded);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("missing tensor 'seq_lens'"), std::string::npos) << s.message();
}

TEST_F(CaseFiles, BadOptionInMetadata) {
  const Case c = generated_case(DType::kF32, false);
  SafetensorsFile file;
  ASSERT_TRUE(save_case(path("c.safetensors"), c).ok());
  ASSERT_TRUE(read_safetensors(path("c.safetensors"), &file).ok());
  file.metadata["sliding_window"] = "12abc";
  ASSERT_TRUE(write_safetensors(path("d.safetensors"), file).ok());
  Case loaded;
  const Status s = load_case(path("d.safetensors"), &loaded);
  EXPECT_NE(s.message().find("'sliding_window' = \"12abc\" is not a number"), std::string::npos)
      << s.message();
}

TEST_F(CaseFiles, RankAboveFourIsRefusedByInputs) {
  Case c = generated_case(DType::kF32, false);
  c.q.shape.push_back(1);
  AttentionInputs inputs;
  const Status s = c.inputs(&inputs);
  EXPECT_NE(s.message().find("tensor 'q' has rank 5"), std::string::npos) << s.message();
}

TEST_F(CaseFiles, NpyDirectoryErrors) {
  const Case c = generated_case(DType::kBF16, false);
  ASSERT_TRUE(save_case_npy(path("npy"), c).ok());
  Case loaded;

  // bf16 travels as '<u2': without "dtype" in options.json it is ambiguous.
  fs::remove(path("npy/options.json"));
  Status s = load_case(path("npy"), &loaded);
  EXPECT_NE(s.message().find("'<u2' holds raw 16-bit floats"), std::string::npos) << s.message();

  std::ofstream(path("npy/options.json")) << R"({"dtype": "bf16", "sliding_windw": 4})";
  s = load_case(path("npy"), &loaded);
  EXPECT_NE(s.message().find("bad entry \"sliding_windw\""), std::string::npos) << s.message();

  std::ofstream(path("npy/options.json")) << R"({"dtype": "bf16")";
  s = load_case(path("npy"), &loaded);
  EXPECT_NE(s.message().find("not valid JSON"), std::string::npos) << s.message();

  std::ofstream(path("npy/options.json")) << R"({"dtype": "bf16"})";
  ASSERT_TRUE(load_case(path("npy"), &loaded).ok());
  fs::remove(path("npy/q.npy"));
  s = load_case(path("npy"), &loaded);
  EXPECT_NE(s.message().find("missing q.npy"), std::string::npos) << s.message();
}

TEST_F(CaseFiles, BrokenNpyFiles) {
  const NpyArray good{"<f4", {2, 3}, std::vector<uint8_t>(24, 0)};
  ASSERT_TRUE(write_npy(path("a.npy"), good).ok());
  std::ifstream in(path("a.npy"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  NpyArray array;
  ASSERT_TRUE(read_npy(path("a.npy"), &array).ok());
  EXPECT_EQ(array.shape, good.shape);

  const auto expect_error = [&](const std::string& content, const std::string& needle) {
    std::ofstream(path("b.npy"), std::ios::binary) << content;
    const Status s = read_npy(path("b.npy"), &array);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  };
  expect_error("not numpy at all", "bad magic");
  expect_error(bytes.substr(0, bytes.size() - 4), "needs 24 data bytes but the file holds 20");
  expect_error(bytes.substr(0, 40), "runs past the end of the file");
  std::string other = bytes;
  other.replace(other.find("<f4"), 3, "<i8");
  expect_error(other, "dtype '<i8' is not supported");
  other = bytes;
  other.replace(other.find("False"), 5, "True ");
  expect_error(other, "Fortran-order");
  other = bytes;
  other.replace(other.find("(2, 3)"), 6, "(2, x)");
  expect_error(other, "no readable 'shape'");
}

TEST_F(CaseFiles, FailedWriteLeavesNoFile) {
  const Case c = generated_case(DType::kF32, false);
  const Status s = save_case(path("no/such/dir/c.safetensors"), c);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(fs::exists(path("no/such/dir")));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 0);
}

}  // namespace
}  // namespace rpa::cases
