// A serving engine's threads may run with denormals flushed to zero (FTZ and
// DAZ in x86's MXCSR, FZ in Arm's FPCR; XLA's CPU runtime sets them). rpa's
// kernels are written and tested for IEEE arithmetic, and the fp8 decode
// keeps its scores and values far down the f32 range, where flushing loses
// them. So each thread that runs a kernel holds one of these for the run:
// IEEE denormals inside, the thread's own setting given back after.
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace rpa {

class ScopedIeeeDenormals {
 public:
  ScopedIeeeDenormals() : saved_(read()) { write(saved_ & ~kFlushBits); }
  ~ScopedIeeeDenormals() { write(saved_); }
  ScopedIeeeDenormals(const ScopedIeeeDenormals&) = delete;
  ScopedIeeeDenormals& operator=(const ScopedIeeeDenormals&) = delete;

 private:
#if defined(__x86_64__) || defined(__i386__)
  static constexpr uint64_t kFlushBits = 0x8040;  // MXCSR FTZ (bit 15) and DAZ (bit 6)
  static uint64_t read() { return _mm_getcsr(); }
  static void write(uint64_t value) { _mm_setcsr(static_cast<unsigned>(value)); }
#elif defined(__aarch64__)
  static constexpr uint64_t kFlushBits = uint64_t{1} << 24;  // FPCR FZ
  static uint64_t read() {
    uint64_t value;
    __asm__ volatile("mrs %0, fpcr" : "=r"(value));
    return value;
  }
  static void write(uint64_t value) { __asm__ volatile("msr fpcr, %0" : : "r"(value)); }
#else
  static constexpr uint64_t kFlushBits = 0;
  static uint64_t read() { return 0; }
  static void write(uint64_t) {}
#endif

  uint64_t saved_;
};

}  // namespace rpa
