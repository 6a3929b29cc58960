// Status: how every rpa entry reports failure. Library code never aborts on bad
// input; it returns a Status whose message names the tensor, index and value.
#pragma once

#include <string>
#include <utility>

namespace rpa {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument = 1,  // the inputs break the contract (docs/contract.md §3)
  kUnsupported = 2,      // valid contract, but no kernel for this combination
  kInternal = 3,         // a bug or a failed resource (allocation, device)
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status Invalid(std::string message) { return {StatusCode::kInvalidArgument, std::move(message)}; }
  static Status Unsupported(std::string message) { return {StatusCode::kUnsupported, std::move(message)}; }
  static Status Internal(std::string message) { return {StatusCode::kInternal, std::move(message)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Returns early from the enclosing function when `expr` yields a failed Status.
#define RPA_RETURN_IF_ERROR(expr)          \
  do {                                     \
    ::rpa::Status rpa_status_ = (expr);    \
    if (!rpa_status_.ok()) return rpa_status_; \
  } while (0)

}  // namespace rpa
