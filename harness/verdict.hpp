// Judges one finished run against its case's expectations.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "harness/case_runner.hpp"
#include "harness/manifest.hpp"

namespace drvm::harness {

struct Verdict {
  bool passed = false;
  // The case did not get to run as intended (drvm refused it, crashed or hung): a JUnit <error>
  // rather than a <failure>.
  bool error = false;
  // `drvm test` was interrupted before the case finished (neither passed nor failed): JUnit
  // <skipped message="interrupted">, TAP "not ok ... # interrupted".
  bool interrupted = false;
  std::vector<std::string> reasons;  // one line each, why it failed
  std::string serial_diff;           // golden vs actual, unified style; empty when not compared
  bool golden_updated = false;       // --update-golden rewrote the golden file
  // Not run: --fail-fast stopped starting cases after a failure. Neither passed nor failed.
  bool skipped = false;
};

// The verdict of a case that --fail-fast kept from starting.
Verdict not_run_verdict();

// With `update_golden`, a golden file that differs (or is missing) is rewritten from the actual
// output when the run otherwise ended as expected; the case then passes on that account.
// Pattern matching stops at `match_deadline` (a reason names the pattern), so a pathological
// pattern or output cannot hold the harness past the case's time.
// An interrupted run (CaseRun::interrupted) is judged "interrupted", whatever it printed.
Verdict judge(const Case& test, const CaseRun& run, bool update_golden,
              std::chrono::steady_clock::time_point match_deadline =
                  std::chrono::steady_clock::time_point::max());

}  // namespace drvm::harness
