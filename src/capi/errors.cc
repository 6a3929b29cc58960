#include "capi/errors.h"

#include <string>

namespace rpa::capi {
namespace {

static_assert(RPA_OK == static_cast<int>(StatusCode::kOk) &&
                  RPA_INVALID_ARGUMENT == static_cast<int>(StatusCode::kInvalidArgument) &&
                  RPA_UNSUPPORTED == static_cast<int>(StatusCode::kUnsupported) &&
                  RPA_INTERNAL == static_cast<int>(StatusCode::kInternal),
              "rpa_status mirrors rpa::StatusCode value for value");

thread_local std::string last_error;

}  // namespace

rpa_status record(const Status& status) {
  last_error = status.message();
  return static_cast<rpa_status>(status.code());
}

}  // namespace rpa::capi

extern "C" const char* rpa_last_error_message(void) { return rpa::capi::last_error.c_str(); }
