// Everything the reports need about one finished case.
#pragma once

#include "harness/case_runner.hpp"
#include "harness/selection.hpp"
#include "harness/verdict.hpp"

namespace drvm::harness {

struct CaseResult {
  SelectedCase selected;
  CaseRun run;
  Verdict verdict;
};

}  // namespace drvm::harness
