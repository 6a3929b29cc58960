// The x86 extensions the CPU backend chooses kernels by, beyond what Highway
// 1.0.3 dispatches on (it has no target for AVX512_BF16 or AMX).
#pragma once

namespace rpa::cpu {

// AVX512_BF16 (vdpbf16ps).
bool has_avx512_bf16();

// AVX512_VBMI (vpermb, vpermt2b): the byte tables that widen fp8 caches for
// the AMX decode (amx_decode_tiles.h).
bool has_avx512_vbmi();

// AMX-BF16 tiles that this process may use: the CPU has AMX-TILE and
// AMX-BF16, the OS saves the tile state (XCR0), and Linux granted this
// process the tile data (arch_prctl ARCH_REQ_XCOMP_PERM, asked once).
bool has_amx_bf16();

// Whether the cpu backend runs bf16 prefill on AMX tiles: has_amx_bf16(),
// unless the environment sets RPA_CPU_AMX=0 (or off), which the tests use to
// run the AVX-512 path on AMX machines too, and a user may use to compare.
bool amx_enabled();

}  // namespace rpa::cpu
