// Fuzz target: the case-file readers (docs/cases.md) on arbitrary bytes. The
// first byte picks the reader: safetensors (from memory and from a file), a
// .npy file, or options.json in a case directory (then read as a case, which
// fails at the missing .npy files after parsing the options). Property: a
// Status, never a crash, a hang, an abort or a read outside the bytes.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cases/case_file.h"
#include "cases/npy.h"
#include "cases/safetensors.h"

namespace {

// One scratch directory per process (parallel fuzzing jobs run processes),
// in memory where the machine has /dev/shm.
// Removed at exit, so that long runs leave nothing behind.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    path = base / ("rpa_fuzz_cases_" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

const std::filesystem::path& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

void write_bytes(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t which = data[0] % 4;
  ++data, --size;
  switch (which) {
    case 0: {
      std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
      rpa::cases::SafetensorsFile file;
      (void)rpa::cases::read_safetensors(in, static_cast<int64_t>(size), &file);
      break;
    }
    case 1: {
      // A file as `rpa run case.safetensors` reads it, then as a case: the
      // tensors and the __metadata__ options must all be found and checked.
      const std::filesystem::path path = scratch_dir() / "case.safetensors";
      write_bytes(path, data, size);
      rpa::cases::Case c;
      if (rpa::cases::load_case(path.string(), &c).ok()) {
        rpa::AttentionInputs inputs;
        (void)c.inputs(&inputs);
      }
      break;
    }
    case 2: {
      const std::filesystem::path path = scratch_dir() / "array.npy";
      write_bytes(path, data, size);
      rpa::cases::NpyArray array;
      (void)rpa::cases::read_npy(path.string(), &array);
      break;
    }
    default: {
      const std::filesystem::path dir = scratch_dir() / "case_dir";
      std::filesystem::create_directories(dir);
      write_bytes(dir / "options.json", data, size);
      rpa::cases::Case c;
      (void)rpa::cases::load_case(dir.string(), &c);
      break;
    }
  }
  return 0;
}
