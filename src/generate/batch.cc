// STUB: being written.
#include "generate/batch.h"
namespace rpa::gen {
AttentionInputs Batch::inputs() const { return {}; }
std::vector<uint8_t> Batch::make_out() const { return {}; }
TensorView Batch::out_view(std::vector<uint8_t>&) const { return {}; }
std::vector<float> Batch::make_lse() const { return {}; }
TensorView Batch::lse_view(std::vector<float>&) const { return {}; }
int64_t Batch::live_rows() const { return 0; }
Batch generate(const BatchSpec& spec) { Batch b; b.spec = spec; return b; }
BatchSpec demo_spec() { return {}; }
}  // namespace rpa::gen
