// STUB: being written.
#include "reference/reference.h"
namespace rpa {
Status run_reference(const Problem&, const AttentionInputs&, const AttentionOutputs&) {
  return Status::Internal("reference: not implemented yet");
}
}  // namespace rpa
