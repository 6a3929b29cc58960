// The one-shot C entries: version, status names and rpa_attention.
#include "capi/convert.h"
#include "capi/errors.h"

using rpa::capi::guarded;

extern "C" {

const char* rpa_version(void) { return RPA_VERSION_STRING; }

const char* rpa_status_name(rpa_status status) {
  switch (status) {
    case RPA_OK:
      return "ok";
    case RPA_INVALID_ARGUMENT:
      return "invalid argument";
    case RPA_UNSUPPORTED:
      return "unsupported";
    case RPA_INTERNAL:
      return "internal error";
  }
  return "unknown status";
}

rpa_status rpa_attention(const rpa_attention_inputs* inputs, const rpa_options* options,
                         const rpa_attention_outputs* outputs) {
  return guarded([&] {
    if (inputs == nullptr || outputs == nullptr) {
      return rpa::Status::Invalid("rpa_attention: inputs and outputs must not be NULL");
    }
    rpa::AttentionInputs in;
    rpa::AttentionOutputs out;
    rpa::AttentionOptions attention_options;
    rpa::RunConfig config;
    RPA_RETURN_IF_ERROR(rpa::capi::to_inputs(*inputs, &in));
    RPA_RETURN_IF_ERROR(rpa::capi::to_outputs(*outputs, &out));
    RPA_RETURN_IF_ERROR(rpa::capi::to_options(options, &attention_options, &config));
    return rpa::attention(in, attention_options, out, config);
  });
}

}  // extern "C"
