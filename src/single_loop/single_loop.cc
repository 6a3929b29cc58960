// STUB: being written.
#include "single_loop/single_loop.h"
namespace rpa {
Status run_single_loop(const Problem&, const Plan&, const AttentionInputs&, const AttentionOutputs&) {
  return Status::Internal("single-loop: not implemented yet");
}
}  // namespace rpa
