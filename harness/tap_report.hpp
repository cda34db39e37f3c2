// TAP version 13 (testanything.org): a plan, one "ok"/"not ok" line per case, and a YAML
// diagnostics block for each failure.
#pragma once

#include <string>
#include <vector>

#include "harness/case_result.hpp"

namespace drvm::harness {

std::string tap_report(const std::vector<CaseResult>& results);

}  // namespace drvm::harness
