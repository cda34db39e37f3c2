// Runs one case as a `drvm run` child process with the case's flags.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/child_process.hpp"
#include "harness/manifest.hpp"
#include "harness/outcome.hpp"

namespace drvm::harness {

struct RunnerConfig {
  std::filesystem::path drvm;  // the drvm executable whose `run` subcommand boots the images
  // The hard deadline is the case's timeout plus this margin: time for drvm to start, notice its
  // own timeout and print its report. Only a drvm that hangs reaches it.
  std::chrono::milliseconds kill_margin{10000};
  std::size_t capture_limit = 16u << 20;
  const Cancellation* cancel = nullptr;  // `drvm test` interrupted: stop the children
  // --recordings: where this case's run writes its recording (drvm run --recording); empty: none.
  // Only single-vCPU cases are recorded.
  std::filesystem::path recording{};
};

struct CaseRun {
  std::vector<std::string> argv;  // what was run
  // What reproduces the case when pasted into a shell from any directory (failure reports,
  // --verbose): absolute paths, and --stat's JSON on stderr instead of the harness's temporary
  // --stat-output file.
  std::vector<std::string> repro_argv;
  bool interrupted = false;  // `drvm test` was interrupted: killed, or never started
  ChildResult child;
  Outcome outcome;
  std::optional<std::string> start_error;  // drvm could not be started at all
  std::optional<std::string> stat_json;    // --stat-output contents, when events were asked for
  std::optional<std::filesystem::path> recording;  // the run's recording, when one was asked for
};

// `drvm run IMAGE [--mem MIB"M"] [--cmdline S] [--initrd M]... --timeout SEC [--event SPEC...
// --stat --json [--stat-output FILE]]`; the serial output is captured from stdout. Without a
// stat_file, --stat goes to stderr.
std::vector<std::string> run_arguments(const Case& test, const RunnerConfig& config,
                                       const std::filesystem::path& stat_file);

// run_arguments() for a person: the drvm and image paths absolute, no --stat-output.
std::vector<std::string> repro_arguments(const Case& test, const RunnerConfig& config);

CaseRun run_case(const Case& test, const RunnerConfig& config);

}  // namespace drvm::harness
