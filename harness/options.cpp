#include "harness/options.hpp"

#include <fmt/format.h>
#include <sched.h>

#include <charconv>
#include <thread>

namespace drvm::harness {

const char* const kTestUsage =
    "usage: drvm test MANIFEST... [options]\n"
    "\n"
    "Runs the cases of each suite manifest (TOML) as 'drvm run' child processes and checks\n"
    "their exit, serial output and events. Exit status: 0 all passed, 1 a case failed,\n"
    "2 usage or manifest error.\n"
    "\n"
    "options:\n"
    "  -j, --jobs N          cases run in parallel (default: the number of cores)\n"
    "  --junit FILE          write a JUnit XML report to FILE\n"
    "  --tap                 print a TAP version 13 report on stdout (the rest goes to stderr)\n"
    "  --filter PATTERN      run only cases matching the glob PATTERN: CASE or SUITE/CASE;\n"
    "                        repeatable (a case runs when any pattern matches)\n"
    "  --shard I/N           run only shard I of N (1 <= I <= N) of the selected cases\n"
    "  --update-golden       rewrite golden files from the actual serial output\n"
    "  -v, --verbose         show each case's command, serial output and drvm messages\n"
    "  -h, --help            show this help\n"
    "\n"
    "docs/testing-guide.md describes the manifest format, with a complete example.\n";

namespace {

unsigned default_jobs() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
    return static_cast<unsigned>(CPU_COUNT(&set));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::variant<Options, std::string> parse_options(std::span<const std::string_view> args) {
  Options options;
  options.jobs = default_jobs();
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::optional<std::string_view> inline_value;
    if (arg.starts_with("--") && arg.find('=') != std::string_view::npos) {
      inline_value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
    } else if (arg.starts_with("-j") && arg.size() > 2) {
      inline_value = arg.substr(2);
      arg = "-j";
    }
    // The option's value: inline ("--junit=x", "-j4") or the next argument.
    std::optional<std::string> missing;
    const auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 < args.size()) return args[++i];
      missing = fmt::format("option {} needs a value", arg);
      return {};
    };

    if (arg == "-h" || arg == "--help") {
      options.help = true;
    } else if (arg == "-j" || arg == "--jobs") {
      const std::string_view text = value();
      if (missing) return *missing;
      const auto jobs = parse_number<unsigned>(text);
      if (!jobs || *jobs == 0) return fmt::format("-j '{}' must be a number of at least 1", text);
      options.jobs = *jobs;
    } else if (arg == "--junit") {
      const std::string_view text = value();
      if (missing) return *missing;
      if (text.empty()) return "--junit needs a file name";
      options.junit = std::filesystem::path(text);
    } else if (arg == "--tap") {
      options.tap = true;
    } else if (arg == "--filter") {
      const std::string_view text = value();
      if (missing) return *missing;
      if (text.empty()) return "--filter needs a pattern";
      options.filters.emplace_back(text);
    } else if (arg == "--shard") {
      const std::string_view text = value();
      if (missing) return *missing;
      const auto shard = parse_shard(text);
      if (!shard) return fmt::format("--shard '{}' must be I/N with 1 <= I <= N, e.g. 2/4", text);
      options.shard = *shard;
    } else if (arg == "--update-golden") {
      options.update_golden = true;
    } else if (arg == "-v" || arg == "--verbose") {
      options.verbose = true;
    } else if (arg == "--runner") {
      const std::string_view text = value();
      if (missing) return *missing;
      options.runner = std::filesystem::path(text);
    } else if (arg == "--kill-margin") {
      const std::string_view text = value();
      if (missing) return *missing;
      const auto ms = parse_number<unsigned>(text);
      if (!ms) return fmt::format("--kill-margin '{}' must be milliseconds", text);
      options.kill_margin = std::chrono::milliseconds(*ms);
    } else if (arg.starts_with("-") && arg != "-") {
      return fmt::format("unknown option '{}'", arg);
    } else {
      options.manifests.emplace_back(arg);
    }
    if (inline_value && (arg == "-h" || arg == "--help" || arg == "--tap" ||
                         arg == "--update-golden" || arg == "-v" || arg == "--verbose")) {
      return fmt::format("option {} takes no value", arg);
    }
  }
  if (!options.help && options.manifests.empty()) return "no manifest given";
  return options;
}

}  // namespace drvm::harness
