#include "harness/case_runner.hpp"

#include <fmt/format.h>
#include <stdlib.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <system_error>

namespace drvm::harness {
namespace {

namespace fs = std::filesystem;

// A private directory for one run's --stat-output file, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "drvm-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::optional<std::string> read_whole_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string> run_arguments(const Case& test, const RunnerConfig& config,
                                       const fs::path& stat_file) {
  std::vector<std::string> argv = {config.drvm.string(), "run", test.image.string()};
  if (test.mem_bytes) {
    // With its unit: a whole number of MiB as "64M", else KiB (always a multiple of 4 KiB).
    const std::uint64_t bytes = *test.mem_bytes;
    argv.insert(argv.end(), {"--mem", bytes % (1 << 20) == 0 ? fmt::format("{}M", bytes >> 20)
                                                             : fmt::format("{}K", bytes >> 10)});
  }
  if (test.cpus) argv.insert(argv.end(), {"--cpus", std::to_string(*test.cpus)});
  if (!test.cmdline.empty()) argv.insert(argv.end(), {"--cmdline", test.cmdline});
  for (const std::string& module : test.initrd) argv.insert(argv.end(), {"--initrd", module});
  argv.insert(argv.end(), {"--timeout", fmt::format("{}", test.timeout_s)});
  if (!test.events.empty()) {
    for (const EventExpectation& event : test.events) {
      argv.insert(argv.end(), {"--event", event.spec});
    }
    argv.insert(argv.end(), {"--stat", "--json"});
    if (!stat_file.empty()) argv.insert(argv.end(), {"--stat-output", stat_file.string()});
  }
  if (!config.recording.empty() && test.cpus.value_or(1) == 1) {
    argv.insert(argv.end(), {"--recording", config.recording.string()});
  }
  return argv;
}

std::vector<std::string> repro_arguments(const Case& test, const RunnerConfig& config) {
  std::error_code ignored;
  RunnerConfig absolute = config;
  absolute.drvm = fs::absolute(config.drvm, ignored);
  absolute.recording.clear();  // the repro command is the plain run
  Case located = test;
  located.image = fs::absolute(test.image, ignored);
  return run_arguments(located, absolute, fs::path());
}

CaseRun run_case(const Case& test, const RunnerConfig& config) {
  CaseRun run;
  try {
    std::optional<TempDir> stat_dir;
    if (!test.events.empty()) stat_dir.emplace();
    const fs::path stat_file = stat_dir ? stat_dir->path() / "stat.json" : fs::path();
    run.argv = run_arguments(test, config, stat_file);
    if (!config.recording.empty() && test.cpus.value_or(1) == 1) run.recording = config.recording;
    run.repro_argv = repro_arguments(test, config);
    const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(test.timeout_s));
    run.child =
        run_child({run.argv, timeout + config.kill_margin, config.capture_limit, config.cancel});
    run.interrupted = run.child.interrupted;
    run.outcome = classify(run.child.wait_status, run.child.killed_at_deadline);
    if (stat_dir) run.stat_json = read_whole_file(stat_file);
  } catch (const std::exception& e) {
    // Runs on a worker thread: report, never terminate the harness.
    run.start_error = fmt::format("cannot run {}: {}", config.drvm.string(), e.what());
  }
  return run;
}

}  // namespace drvm::harness
