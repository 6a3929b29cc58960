#include "cpu/cpu_features.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace rpa::cpu {

#if defined(__x86_64__) && defined(__GNUC__)

bool has_avx512_bf16() { return __builtin_cpu_supports("avx512bf16"); }
bool has_avx512_vbmi() { return __builtin_cpu_supports("avx512vbmi"); }

namespace {

bool detect_amx_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = (edx >> 22) & 1;
  const bool amx_tile = (edx >> 24) & 1;
  const bool osxsave = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 27) & 1);
  }();
  if (!amx_bf16 || !amx_tile || !osxsave) return false;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  constexpr unsigned kTileCfgAndData = (1u << 17) | (1u << 18);
  if ((xcr0_lo & kTileCfgAndData) != kTileCfgAndData) return false;
#if defined(__linux__)
  // Linux hands out the 8 KiB tile state only on request (kernel 5.16+).
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace

bool has_amx_bf16() {
  static const bool usable = detect_amx_bf16();
  return usable;
}

#else

bool has_avx512_bf16() { return false; }
bool has_avx512_vbmi() { return false; }
bool has_amx_bf16() { return false; }

#endif

bool amx_enabled() {
  const char* setting = std::getenv("RPA_CPU_AMX");
  if (setting != nullptr) {
    const std::string s = setting;
    if (s == "0" || s == "off" || s == "OFF" || s == "false") return false;
  }
  return has_amx_bf16();
}

}  // namespace rpa::cpu
