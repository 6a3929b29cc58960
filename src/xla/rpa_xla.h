/* librpa_xla: rpa's ragged paged attention as an XLA FFI custom call
 * (docs/xla.md). The handlers follow XLA's typed FFI ABI (custom-call
 * api_version 4): register them with XLA under the target name
 * RPA_XLA_TARGET_NAME, for platform "Host" (also spelled "cpu") and, in a
 * build with the cuda backend, "CUDA".
 *
 * This header needs none of XLA's: the two FFI types are only named here.
 * Plain C, so Zig, Rust and ctypes can declare the same symbols. */
#ifndef RPA_XLA_H_
#define RPA_XLA_H_

#ifdef __cplusplus
extern "C" {
#endif

#define RPA_XLA_TARGET_NAME "rpa_ragged_paged_attention"

struct XLA_FFI_CallFrame;
struct XLA_FFI_Error;

#if defined(__GNUC__)
#define RPA_XLA_EXPORT __attribute__((visibility("default")))
#else
#define RPA_XLA_EXPORT
#endif

/* The handler for XLA's CPU backend ("Host"). */
RPA_XLA_EXPORT struct XLA_FFI_Error* rpa_xla_attention_host(struct XLA_FFI_CallFrame* call_frame);

/* The handler for XLA's GPU backend ("CUDA"); exported only by a library built
 * with the cuda backend (look it up with dlsym before registering it). */
RPA_XLA_EXPORT struct XLA_FFI_Error* rpa_xla_attention_cuda(struct XLA_FFI_CallFrame* call_frame);

/* "MAJOR.MINOR.PATCH" of the rpa this library was built from. */
RPA_XLA_EXPORT const char* rpa_xla_version(void);

#ifdef __cplusplus
}
#endif

#endif /* RPA_XLA_H_ */
