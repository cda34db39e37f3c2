// `drvm test` from command line to exit status: load the manifests, select the cases, run them
// in parallel, report.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "harness/cancellation.hpp"
#include "harness/case_result.hpp"
#include "harness/options.hpp"

namespace drvm::harness {

inline constexpr int kExitAllPassed = 0;
inline constexpr int kExitSomeFailed = 1;
inline constexpr int kExitUsage = 2;
// Interrupted (SIGINT, SIGTERM): 128 + the signal, as a shell reports a program it killed
// (130 for SIGINT, 143 for SIGTERM).
inline constexpr int kExitInterruptedBase = 128;

struct Io {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
};

// Runs every case of `cases` on `jobs` worker threads; `on_start` and `on_finish` are called on
// the calling thread, in the order things happen. Results come back in the order of `cases`.
// Once config.cancel is requested, running children are killed and no further case starts:
// those cases come back interrupted (on_finish without on_start).
// With `fail_fast`, no case starts after one has failed: those not started finish at once with
// not_run_verdict() (cases already running finish normally).
std::vector<CaseResult> run_cases(const std::vector<SelectedCase>& cases, unsigned jobs,
                                  const RunnerConfig& config, bool update_golden,
                                  const std::function<void(const SelectedCase&)>& on_start,
                                  const std::function<void(const CaseResult&)>& on_finish,
                                  bool fail_fast = false);

// The whole command; `self` is the drvm executable that runs the cases unless --runner is given.
// When `cancel` is requested (SIGINT/SIGTERM), the unfinished cases are reported as interrupted,
// the summary and reports are still written, and the status is 128 + the signal.
int test_main(std::span<const std::string_view> args, const std::filesystem::path& self, Io io = {},
              const Cancellation* cancel = nullptr);

}  // namespace drvm::harness
