// What `drvm test` tells a person: a progress display while cases run, then each failure's
// details and a summary.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "harness/case_result.hpp"

namespace drvm::harness {

// On a terminal (`live`), one status line rewritten in place, with failures printed above it as
// they happen; otherwise one plain line per finished case, fit for CI logs.
class Progress {
 public:
  Progress(std::FILE* stream, bool live, std::size_t total);
  void started(const std::string& name);
  void finished(const CaseResult& result);
  void done();  // erases the live line

 private:
  void redraw();
  void clear_line();

  std::FILE* stream_;
  bool live_;
  std::size_t total_;
  std::size_t finished_ = 0;
  std::size_t failed_ = 0;
  std::vector<std::string> running_;
};

// "PASS", "FAIL", "ERROR" or "INTERRUPTED".
std::string verdict_word(const Verdict& verdict);

// "FAIL suite/case (file:line)" and why: reasons, a command that reproduces the case, serial diff,
// drvm's stderr; lines longer than 200 bytes are cut.
std::string failure_details(const CaseResult& result);

// --verbose: the command, serial output and stderr of any case.
std::string verbose_details(const CaseResult& result);

// "12 passed, 1 failed, 1 error, 2 interrupted (16 cases, 3.2 s)".
std::string summary_line(const std::vector<CaseResult>& results, double wall_seconds);

}  // namespace drvm::harness
