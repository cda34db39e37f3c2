// Renders a ProbeResult for people (`drvm probe`) and for programs (`drvm probe --json`). The JSON
// key names are stable; docs/probe.md documents them.
#pragma once

#include <string>

#include "vmm/probe/probe.hpp"

namespace drvm::vmm {

// An aligned table: host facts, one row per finding (answer and what was observed), the costs.
std::string format_probe_table(const ProbeResult& result);

// One JSON object: {"schema": 1, "host": {...}, "findings": {key: {"answer", "detail"}},
// "costs_us": {...}, "probe_ms": N}. Costs that could not be measured are null.
std::string format_probe_json(const ProbeResult& result);

}  // namespace drvm::vmm
