// A unified-style line diff (LCS-based) of a golden file against actual serial output, bounded in
// memory and in length so that a runaway guest cannot make the report explode.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace drvm::harness {

struct DiffLimits {
  std::size_t context = 3;             // unchanged lines around each change
  std::size_t max_cells = 4u << 20;    // LCS table size; beyond it, a summary instead of a diff
  std::size_t max_output_lines = 200;  // the rest is counted, not shown
};

// "--- expected\n+++ actual\n@@ -a,b +c,d @@\n lines..." or an empty string when equal.
// Lines show non-printable bytes as \xNN; a last line without '\n' is marked as in diff(1).
std::string unified_diff(std::string_view expected, std::string_view actual,
                         std::string_view expected_label = "expected",
                         std::string_view actual_label = "actual", const DiffLimits& limits = {});

}  // namespace drvm::harness
