// --plot: writes the sweep of a report as JSON next to the image and draws it
// with scripts/plot_bench.py (Debian's python3-matplotlib).
#pragma once

#include <string>

#include "bench/report.h"

namespace rpa::bench {

// Writes `png` with its extension replaced by .json ({"machine", "sweep"}),
// then runs /usr/bin/python3 scripts/plot_bench.py on it to draw `png`.
Status plot_report(const Report& report, const std::string& png);

}  // namespace rpa::bench
