#include "harness/session.hpp"

#include <fmt/format.h>

#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "harness/console_report.hpp"
#include "harness/junit_report.hpp"
#include "harness/manifest.hpp"
#include "harness/tap_report.hpp"

namespace drvm::harness {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Worker threads report here; the calling thread consumes, so reports need no locking.
struct Event {
  std::size_t index;
  std::optional<CaseRun> run;  // empty: the case started (or, with `skipped`, never will)
  bool skipped = false;        // --fail-fast: not started after a failure
};

class EventQueue {
 public:
  void push(Event event) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(event));
    }
    ready_.notify_one();
  }
  Event pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !events_.empty(); });
    Event event = std::move(events_.front());
    events_.pop_front();
    return event;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Event> events_;
};

int usage_error(Io io, std::string_view message) {
  fmt::print(io.err, "drvm: test: {}; run 'drvm test --help' for usage\n", message);
  return kExitUsage;
}

}  // namespace

// --recordings DIR: the file a case's recording goes to ("SUITE__CASE.drvmrec", path-safe).
std::filesystem::path recording_file(const std::filesystem::path& dir, const SelectedCase& c) {
  std::string name = c.full_name();
  for (char& ch : name) {
    if (ch == '/') {
      ch = '_';
    } else if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' &&
               ch != '.') {
      ch = '-';
    }
  }
  return dir / (name + ".drvmrec");
}

std::vector<CaseResult> run_cases(const std::vector<SelectedCase>& cases, unsigned jobs,
                                  const RunnerConfig& config, bool update_golden,
                                  const std::function<void(const SelectedCase&)>& on_start,
                                  const std::function<void(const CaseResult&)>& on_finish,
                                  bool fail_fast) {
  std::vector<CaseResult> results(cases.size());
  EventQueue queue;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};  // set on this thread after judging; read by the workers
  // --fail-fast: a worker takes its next case only once its previous one is judged, so that with
  // -j 1 nothing starts after a failure.
  std::mutex judged_mutex;
  std::condition_variable judged_changed;
  std::vector<char> judged(cases.size(), 0);
  std::vector<std::jthread> workers;
  const std::size_t threads = std::min<std::size_t>(std::max(jobs, 1u), cases.size());
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      std::optional<std::size_t> previous;
      for (std::size_t i = next++; i < cases.size(); i = next++) {
        if (config.cancel != nullptr && config.cancel->requested()) {
          CaseRun never_started;
          never_started.interrupted = true;
          never_started.repro_argv = repro_arguments(*cases[i].test, config);
          queue.push({i, std::move(never_started)});
          continue;
        }
        if (fail_fast && previous) {
          std::unique_lock lock(judged_mutex);
          judged_changed.wait(lock, [&] { return judged[*previous] != 0; });
        }
        if (failed) {
          queue.push({i, std::nullopt, true});
          continue;
        }
        previous = i;
        queue.push({i, std::nullopt});
        RunnerConfig for_case = config;
        if (!config.recording.empty())
          for_case.recording = recording_file(config.recording, cases[i]);
        queue.push({i, run_case(*cases[i].test, for_case)});
      }
    });
  }
  try {
    for (std::size_t done = 0; done < cases.size();) {
      Event event = queue.pop();
      const SelectedCase& selected = cases[event.index];
      if (event.skipped) {
        CaseResult& result = results[event.index];
        result.selected = selected;
        result.verdict = not_run_verdict();
        on_finish(result);
        ++done;
        continue;
      }
      if (!event.run) {
        on_start(selected);
        continue;
      }
      CaseResult& result = results[event.index];
      result.selected = selected;
      result.run = std::move(*event.run);
      // Judged here, on one thread, so that --update-golden never writes a file concurrently.
      // Matching gets the case's own timeout as its budget.
      const auto budget = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(selected.test->timeout_s));
      result.verdict = judge(*selected.test, result.run, update_golden,
                             std::chrono::steady_clock::now() + budget);
      if (fail_fast && !result.verdict.passed) failed = true;
      if (result.run.recording && (result.verdict.passed || result.verdict.skipped)) {
        std::error_code ignored;
        std::filesystem::remove(*result.run.recording, ignored);  // kept for failures only
        result.run.recording.reset();
      }
      {
        std::lock_guard lock(judged_mutex);
        judged[event.index] = 1;
      }
      judged_changed.notify_all();
      on_finish(result);
      ++done;
    }
  } catch (...) {
    // No worker may wait for a verdict that will never come: they stop starting cases.
    failed = true;
    {
      std::lock_guard lock(judged_mutex);
      std::fill(judged.begin(), judged.end(), 1);
    }
    judged_changed.notify_all();
    throw;
  }
  return results;
}

namespace {

int run_test_command(std::span<const std::string_view> args, const fs::path& self, Io io,
                     const Cancellation* cancel) {
  auto parsed = parse_options(args);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    fmt::print(io.err, "drvm: {}\n", *error);
    return kExitUsage;
  }
  const Options& options = std::get<Options>(parsed);
  if (options.help) {
    fmt::print(io.out, "{}", test_usage());
    return kExitAllPassed;
  }
  // Human-readable output goes to stdout unless stdout carries TAP.
  std::FILE* human = options.tap ? io.err : io.out;

  std::vector<Suite> suites;
  try {
    for (const fs::path& manifest : options.manifests) suites.push_back(load_manifest(manifest));
  } catch (const ManifestError& e) {
    fmt::print(io.err, "drvm: test: bad manifest: {}\n", e.what());
    return kExitUsage;
  }

  RunnerConfig config;
  config.drvm = options.runner.value_or(self);
  config.kill_margin = options.kill_margin;
  config.cancel = cancel;
  if (options.recordings) {
    std::error_code error;
    std::filesystem::create_directories(*options.recordings, error);
    if (error || !std::filesystem::is_directory(*options.recordings)) {
      return usage_error(io, fmt::format("--recordings: cannot use {} as a directory: {}; give a "
                                         "writable directory",
                                         options.recordings->string(),
                                         error ? error.message() : "not a directory"));
    }
    config.recording = *options.recordings;  // per case: recording_file()
  }
  if (::access(config.drvm.c_str(), X_OK) != 0) {
    return usage_error(io, fmt::format("cannot execute {}: {}; check --runner or the drvm build",
                                       config.drvm.string(), std::strerror(errno)));
  }
  if (options.junit) {
    const fs::path dir = fs::absolute(*options.junit).parent_path();
    std::error_code ignored;
    if (!fs::is_directory(dir, ignored)) {
      return usage_error(io, fmt::format("--junit {}: directory {} does not exist",
                                         options.junit->string(), dir.string()));
    }
  }

  const auto filtered = filter_cases(suites, options.filters);
  if (filtered.empty()) {
    return usage_error(
        io, fmt::format("--filter {} matches no case", fmt::join(options.filters, " --filter ")));
  }
  const auto cases = shard_cases(filtered, options.shard);
  if (options.list) {
    for (const SelectedCase& c : cases) fmt::print(io.out, "{}\n", c.full_name());
    std::fflush(io.out);
    return kExitAllPassed;
  }
  if (options.shard.count > 1) {
    fmt::print(human, "shard {}/{}: {} of {} cases\n", options.shard.index, options.shard.count,
               cases.size(), filtered.size());
  }

  const auto start = Clock::now();
  Progress progress(io.err, isatty(fileno(io.err)) == 1 && !options.verbose, cases.size());
  const auto results = run_cases(
      cases, options.jobs, config, options.update_golden,
      [&](const SelectedCase& c) { progress.started(c.full_name()); },
      [&](const CaseResult& result) {
        progress.finished(result);
        if (options.verbose && !result.verdict.skipped) {
          fmt::print(human, "{}", verbose_details(result));
        }
      },
      options.fail_fast);
  progress.done();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();

  bool all_passed = true;
  for (const CaseResult& result : results) {
    if (result.verdict.passed) continue;
    all_passed = false;  // a case not run means an earlier one failed
    if (result.verdict.skipped) continue;
    fmt::print(human, "\n{}", failure_details(result));
  }
  fmt::print(human, "\n{}\n", summary_line(results, wall));
  std::fflush(human);

  if (options.tap) {
    fmt::print(io.out, "{}", tap_report(results));
    std::fflush(io.out);
  }
  if (options.junit) {
    std::ofstream out(*options.junit, std::ios::binary | std::ios::trunc);
    out << junit_xml(results, current_junit_context());
    out.flush();
    if (!out) {
      fmt::print(io.err, "drvm: test: cannot write --junit {}: {}; check the path\n",
                 options.junit->string(),
                 std::error_code(errno, std::generic_category()).message());
      return kExitUsage;
    }
  }
  if (cancel != nullptr && cancel->requested()) {
    fmt::print(io.err,
               "drvm: test: interrupted; the unfinished cases are reported as interrupted\n");
    return kExitInterruptedBase + (cancel->signal() > 0 ? cancel->signal() : 2);
  }
  return all_passed ? kExitAllPassed : kExitSomeFailed;
}

}  // namespace

int test_main(std::span<const std::string_view> args, const fs::path& self, Io io,
              const Cancellation* cancel) {
  try {
    return run_test_command(args, self, io, cancel);
  } catch (const std::exception& e) {
    fmt::print(io.err, "drvm: test: {}; please report this as a drvm bug\n", e.what());
    return kExitUsage;
  }
}

}  // namespace drvm::harness
