#include "bench/report.h"

#include <cstdio>

namespace rpa::bench {

nlohmann::json shared_json(const ScenarioHead& s, std::string_view backend, const BatchTimes& main,
                           const BatchTimes* at_1x) {
  nlohmann::json j = {{"name", s.name},
                      {"summary", s.summary},
                      {"backend", std::string(backend)},
                      {"dtype", std::string(dtype_name(s.dtype))}};
  if (!s.error.empty()) return j;
  const double seconds = main.rpa.median();
  j.update({
      {"time_ms", ms(seconds)},
      {"time_min_ms", ms(main.rpa.min())},
      {"time_max_ms", ms(main.rpa.max())},
      {"samples", main.rpa.samples()},
      {"useful_bytes", main.work.useful_bytes},
      {"flops", main.work.flops},
      {"gbps", main.work.useful_bytes / seconds * 1e-9},
      {"capacity_multiplier", nullptr},
      {"capacity_invariance", nullptr},
      {"time_1x_ms", nullptr},
  });
  if (at_1x != nullptr) {
    j["capacity_multiplier"] = s.capacity_multiplier;
    j["capacity_invariance"] = seconds / at_1x->rpa.median();
    j["time_1x_ms"] = ms(at_1x->rpa.median());
  }
  const PartTimes* p = s.parts ? &*s.parts : nullptr;
  for (const char* key : {"mixed_ratio", "decode_part_ms", "decode_part_samples", "prefill_part_ms",
                          "prefill_part_samples", "parts_rel_diff_vs_whole"}) {
    j[key] = nullptr;
  }
  if (p == nullptr) return j;
  j["mixed_ratio"] = p->mixed_ratio(main.rpa);
  j["decode_part_ms"] = ms(p->decode.median());
  j["decode_part_samples"] = p->decode.samples();
  j["prefill_part_ms"] = ms(p->prefill.median());
  j["prefill_part_samples"] = p->prefill.samples();
  j["parts_rel_diff_vs_whole"] = p->rel_diff_vs_whole;
  return j;
}

SharedCells shared_cells(const ScenarioHead& s, const BatchTimes& main, const BatchTimes* at_1x,
                         int digits) {
  char time[64];
  std::snprintf(time, sizeof time, "%.*f (%.*f-%.*f)", digits, ms(main.rpa.median()), digits,
                ms(main.rpa.min()), digits, ms(main.rpa.max()));
  char capacity[32] = "-";
  if (at_1x != nullptr) {
    std::snprintf(capacity, sizeof capacity, "%.2f", main.rpa.median() / at_1x->rpa.median());
  }
  char mixed[32] = "-";
  if (s.parts) std::snprintf(mixed, sizeof mixed, "%.2f", s.parts->mixed_ratio(main.rpa));
  return {time, capacity, mixed};
}

}  // namespace rpa::bench
