// rpa_xla_attention_host: the custom call on XLA's CPU backend. XLA calls it
// on one of its threads with host buffers; the cpu backend (OpenMP) does the
// work before it returns, exactly as rpa.attention and rpa_attention do.
#include <cstring>

#include "call_frame.h"
#include "rpa_xla.h"

namespace rpa::xla_ffi {
namespace {

// Zeroes the rows of `view` (a result buffer) that no live slot wrote.
void zero_rows(const TensorView& view, const std::vector<RowRange>& rows) {
  if (!view.present()) return;
  const int64_t bytes = row_bytes(view);
  for (const RowRange& r : rows) {
    std::memset(static_cast<char*>(view.data) + r.begin * bytes, 0,
                static_cast<size_t>((r.end - r.begin) * bytes));
  }
}

ffi::Error attention_host(ffi::RemainingArgs args, ffi::RemainingRets rets, ffi::Dictionary attrs) {
  Call call;
  Status status = read_call(attrs, args, rets, &call);
  if (status.ok()) {
    RunConfig config;
    config.backend = Backend::kCpu;
    status = attention(call.inputs, call.options, call.outputs, config);
  }
  if (!status.ok()) return to_ffi_error(status);  // nothing was written
  const std::vector<RowRange> rows = unwritten_rows(call.inputs);
  zero_rows(call.outputs.out, rows);
  zero_rows(call.outputs.lse, rows);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace rpa::xla_ffi

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    rpa_xla_attention_host, rpa::xla_ffi::attention_host,
    ::xla::ffi::Ffi::Bind().RemainingArgs().RemainingRets().Attrs<::xla::ffi::Dictionary>());

const char* rpa_xla_version(void) { return RPA_VERSION_STRING; }
