// Finished cases built by hand, for the report writers' tests.
#pragma once

#include <sys/wait.h>

#include <deque>
#include <string>
#include <vector>

#include "harness/case_result.hpp"

namespace drvm::harness::testing {

class ReportFixture {
 public:
  ReportFixture() {
    suites_.emplace_back().name = "boot";
    suites_.emplace_back().name = "dr & co";
  }

  // Adds a case to suites_[suite] that exited with guest value 0, passed or not as told.
  CaseResult& add(std::size_t suite, std::string name, bool passed, bool error = false) {
    Case& test = cases_.emplace_back();
    test.name = std::move(name);
    test.location = "boot.toml:3";
    CaseResult result;
    result.selected = {&suites_[suite], &test};
    result.run.argv = {"/bin/drvm", "run", "x.elf"};
    result.run.child.wall = std::chrono::milliseconds(250);
    result.run.outcome = classify(1 << 8, false);
    result.verdict.passed = passed;
    result.verdict.error = error;
    if (!passed) result.verdict.reasons = {"expected exit value 0, got halt (status 6)", "second"};
    results.push_back(std::move(result));
    return results.back();
  }

  std::vector<CaseResult> results;

 private:
  std::deque<Suite> suites_;  // stable addresses for SelectedCase
  std::deque<Case> cases_;
};

}  // namespace drvm::harness::testing
