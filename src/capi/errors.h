// The C boundary: the thread-local last error and the guard that turns every
// Status and every C++ exception into an rpa_status.
#pragma once

#include <exception>
#include <new>

#include "rpa/rpa.h"
#include "rpa/status.h"

namespace rpa::capi {

// Records `status` as this thread's last error ("" for success) and returns
// its code.
rpa_status record(const Status& status);

// Runs `body` (returning a Status) so that nothing thrown escapes to C.
template <typename Body>
rpa_status guarded(const Body& body) noexcept {
  try {
    return record(body());
  } catch (const std::bad_alloc&) {
    return record(Status::Internal("out of memory"));
  } catch (const std::exception& e) {
    return record(Status::Internal(e.what()));
  } catch (...) {
    return record(Status::Internal("unknown C++ exception"));
  }
}

}  // namespace rpa::capi
