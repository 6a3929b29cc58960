// STUB: being written.
#include "cpu/cpu.h"
namespace rpa {
Status run_cpu(const Problem&, const Plan&, const AttentionInputs&, const AttentionOutputs&, int) {
  return Status::Internal("cpu: not implemented yet");
}
}  // namespace rpa
