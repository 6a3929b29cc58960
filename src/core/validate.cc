// STUB: being written.
#include "core/problem.h"
namespace rpa {
Status describe(const AttentionInputs&, const AttentionOptions&, const AttentionOutputs*, Problem*) {
  return Status::Internal("describe: not implemented yet");
}
Status check_metadata(const Problem&) { return Status::Internal("check_metadata: not implemented yet"); }
}  // namespace rpa
