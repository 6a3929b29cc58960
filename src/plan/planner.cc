// STUB: being written.
#include "plan/planner.h"
namespace rpa {
Status build_plan(const Problem&, const PlanConfig&, Plan*) { return Status::Internal("plan: not implemented yet"); }
}  // namespace rpa
