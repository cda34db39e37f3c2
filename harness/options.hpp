// The command line of `drvm test`.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "harness/selection.hpp"

namespace drvm::harness {

struct Options {
  std::vector<std::filesystem::path> manifests;
  unsigned jobs = 1;  // parse_options defaults it to the number of cores
  std::optional<std::filesystem::path> junit;
  bool tap = false;
  std::vector<std::string> filters;
  Shard shard;
  bool update_golden = false;
  bool verbose = false;
  bool list = false;       // --list: print the selected cases' names, run nothing
  bool fail_fast = false;  // --fail-fast: start no case after the first failure
  // --recordings DIR: keep each failed single-vCPU case's recording there (drvm replay FILE).
  std::optional<std::filesystem::path> recordings;
  bool help = false;
  // Internal, for drvm's own tests and benchmarks: the program run as `PROGRAM run IMAGE ...`
  // instead of this drvm, and the margin past a case's timeout before the harness kills it.
  std::optional<std::filesystem::path> runner;
  std::chrono::milliseconds kill_margin{10000};
};

// `drvm test --help`.
std::string test_usage();

// The options, or the one-line usage error ("test: <what failed>: <cause>; <what to do>",
// without "drvm: ").
std::variant<Options, std::string> parse_options(std::span<const std::string_view> args);

}  // namespace drvm::harness
