#include "harness/options.hpp"

#include <fmt/format.h>
#include <sched.h>

#include <thread>

#include "cmdline/command_line.hpp"
#include "cmdline/numbers.hpp"

namespace drvm::harness {

namespace {

using cmdline::UsageError;

unsigned default_jobs() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
    return static_cast<unsigned>(CPU_COUNT(&set));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// Registers every option of `drvm test` on `line`, writing into `options`.
void add_test_options(cmdline::CommandLine& line, Options& options) {
  line.add_value(
      "-j,--jobs", "N",
      [&options](const std::string& text) {
        const auto jobs = cmdline::parse_whole_number(text);
        if (!jobs || *jobs == 0 || *jobs > 4096) {
          throw UsageError(fmt::format(
              "test: --jobs: '{}' is not a number of parallel cases; give 1 to 4096, e.g. -j 4",
              text));
        }
        options.jobs = static_cast<unsigned>(*jobs);
      },
      "cases run in parallel (default: the number of cores)");
  line.add_value(
      "--junit", "FILE",
      [&options](const std::string& text) {
        if (text.empty()) throw UsageError("test: --junit: empty file name; give a file name");
        options.junit = std::filesystem::path(text);
      },
      "write a JUnit XML report to FILE");
  line.add_flag("--tap", &options.tap,
                "print a TAP version 13 report on stdout (the rest goes to stderr)");
  line.add_value(
      "--filter", "PATTERN",
      [&options](const std::string& text) {
        if (text.empty()) {
          throw UsageError("test: --filter: empty pattern; give a glob: CASE or SUITE/CASE");
        }
        options.filters.push_back(text);
      },
      "run only cases matching the glob PATTERN: CASE or SUITE/CASE; repeatable (a case runs "
      "when any pattern matches)");
  line.add_value(
      "--shard", "I/N",
      [&options](const std::string& text) {
        const auto shard = parse_shard(text);
        if (!shard) {
          throw UsageError(fmt::format(
              "test: --shard: '{}' is not I/N with 1 <= I <= N; write e.g. --shard 2/4", text));
        }
        options.shard = *shard;
      },
      "run only shard I of N (1 <= I <= N) of the selected cases");
  line.add_flag("--update-golden", &options.update_golden,
                "rewrite golden files from the actual serial output");
  line.add_flag("-v,--verbose", &options.verbose,
                "show each case's command, serial output and drvm messages");
  line.add_flag(
      "--list", &options.list,
      "print the selected cases (after --filter and --shard) as SUITE/CASE, one per line, "
      "and run nothing");
  line.add_flag("--fail-fast", &options.fail_fast,
                "start no new case after the first failure; the rest are reported as not run");
  line.add_value(
      "--recordings", "DIR",
      [&options](const std::string& text) {
        if (text.empty()) throw UsageError("test: --recordings: empty directory name; give one");
        options.recordings = std::filesystem::path(text);
      },
      "record every single-vCPU case and keep the recordings of the failed ones in DIR as "
      "SUITE__CASE.drvmrec ('drvm replay FILE --gdb PORT' repeats the run under gdb, forwards "
      "and backwards)");
  line.add_flag("-h,--help", &options.help, "show this help");
  // Internal (no help line): drvm's own tests and benchmarks.
  line.add_value(
      "--runner", "PROGRAM",
      [&options](const std::string& text) { options.runner = std::filesystem::path(text); }, "");
  line.add_value(
      "--kill-margin", "MS",
      [&options](const std::string& text) {
        const auto ms = cmdline::parse_whole_number(text);
        if (!ms || *ms > 24 * 3600 * 1000ULL) {
          throw UsageError(fmt::format(
              "test: --kill-margin: '{}' is not a number of milliseconds; write e.g. 250", text));
        }
        options.kill_margin = std::chrono::milliseconds(*ms);
      },
      "");
}

}  // namespace

std::string test_usage() {
  Options ignored;
  cmdline::CommandLine line("test");
  add_test_options(line, ignored);
  return "usage: drvm test MANIFEST... [options]\n"
         "\n"
         "Runs the cases of each suite manifest (TOML) as 'drvm run' child processes and checks\n"
         "their exit, serial output and events. Exit status: 0 all passed, 1 a case failed,\n"
         "2 usage or manifest error.\n"
         "\n"
         "options:\n" +
         line.option_help() +
         "\n"
         "docs/testing-guide.md describes the manifest format, with a complete example.\n";
}

std::variant<Options, std::string> parse_options(std::span<const std::string_view> args) {
  Options options;
  options.jobs = default_jobs();
  cmdline::CommandLine line("test");
  add_test_options(line, options);
  try {
    for (const std::string& manifest : line.parse(args)) options.manifests.emplace_back(manifest);
  } catch (const UsageError& error) {
    return std::string(error.what());
  }
  if (!options.help && options.manifests.empty()) {
    return std::string(
        "test: no manifest given; usage: drvm test MANIFEST... [options] (see drvm test --help)");
  }
  return options;
}

}  // namespace drvm::harness
