// JUnit XML, as read by Jenkins, GitLab CI and the GitHub Actions JUnit reporters: one
// <testsuite> per manifest, one <testcase> per case run, with every attribute the common JUnit
// schemas require.
#pragma once

#include <string>
#include <vector>

#include "harness/case_result.hpp"

namespace drvm::harness {

struct JunitContext {
  std::string hostname;
  std::string timestamp;  // ISO 8601, "2026-11-23T16:35:00"
};

JunitContext current_junit_context();

// `results` in report order; suites appear in the order of their first case.
std::string junit_xml(const std::vector<CaseResult>& results, const JunitContext& context);

}  // namespace drvm::harness
