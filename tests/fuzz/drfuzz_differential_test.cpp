// drfuzz.elf (docs/fuzzing.md) under the default debug-register engines and under --exact, with and
// without host events: the guest's serial logs must be identical and the host counts equal. The
// image prints one line per exception its random programs raise, so a difference names the seed.
// DRVM_FUZZ_SEEDS (500), DRVM_FUZZ_LAYOUT (all) and DRVM_FUZZ_ARGS (more drfuzz options, e.g.
// "tf=0") select what runs; scripts/fuzz-engines.sh runs
// the same comparison over many more seeds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

constexpr int kBatch = 50;

// On addresses drfuzz's guest watches often pick (hot_address() in drfuzz_main.c) and on other
// fuzz variables and code; the same list as scripts/fuzz-engines.sh for layout=all.
const std::vector<std::string> kHostEvents = {
    "mem:drfuzz_code_2:x",          "mem:drfuzz_code_4+5/1:x",      "mem:drfuzz_plain+0x100/8:w",
    "mem:drfuzz_plain+0x1000/8:rw", "mem:drfuzz_plain+0x1f00/4:rw", "mem:drfuzz_arena+0x800/8:w",
    "mem:drfuzz_arena+0x2ff8/8:w",  "mem:drfuzz_arena+0x3c00/8:rw", "mem:drfuzz_arena+0x4100/8:w",
    "mem:drfuzz_arena+0x1ff8/8:w",  // the GDT/IDT/TSS page
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

enum class Mode { kDefault, kExact, kDefaultEvents, kExactEvents };
const char* name(Mode mode) {
  switch (mode) {
    case Mode::kDefault:
      return "(a) default engines";
    case Mode::kExact:
      return "(b) --exact";
    case Mode::kDefaultEvents:
      return "(c) default engines + host events";
    default:
      return "(d) --exact + host events";
  }
}
bool exact(Mode mode) {
  return mode == Mode::kExact || mode == Mode::kExactEvents;
}
bool events(Mode mode) {
  return mode == Mode::kDefaultEvents || mode == Mode::kExactEvents;
}

std::string cmdline(int first, int count, const std::string& layout, bool verbose = false) {
  const std::string extra = env_or("DRVM_FUZZ_ARGS", "");
  return "seed=" + std::to_string(first) + " count=" + std::to_string(count) + " layout=" + layout +
         (extra.empty() ? "" : " " + extra) + (verbose ? " verbose=1" : "");
}

// The drvm arguments after the image, without --timeout and --stat-output.
std::vector<std::string> mode_arguments(Mode mode) {
  std::vector<std::string> args;
  if (exact(mode)) args.push_back("--exact");
  if (events(mode)) {
    for (const std::string& event : kHostEvents) args.insert(args.end(), {"--event", event});
    args.insert(args.end(), {"--slots", "16", "--stat"});
  }
  return args;
}

std::string reproduce(Mode mode, int seed, const std::string& layout) {
  std::string command = std::string(DRVM_BINARY) + " run " + guest_image_path("drfuzz") +
                        " --cmdline \"" + cmdline(seed, 1, layout, true) + "\"";
  for (const std::string& arg : mode_arguments(mode)) command += " " + arg;
  return command;
}

struct Run {
  ProcessResult process;
  std::vector<std::string> lines;
  std::vector<unsigned long long> counts;  // host event counts, in kHostEvents order
};

Run run_mode(Mode mode, int first, int count, const std::string& layout) {
  std::vector<std::string> argv = {
      DRVM_BINARY, "run",       guest_image_path("drfuzz"),   "--timeout",
      "60",        "--cmdline", cmdline(first, count, layout)};
  const std::vector<std::string> extra = mode_arguments(mode);
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string stat_file;
  if (events(mode)) {
    stat_file = ::testing::TempDir() + "drfuzz-" + std::to_string(::getpid()) + "-" +
                std::to_string(first) + (exact(mode) ? "-d" : "-c") + ".json";
    argv.insert(argv.end(), {"--json", "--stat-output", stat_file});
  }
  // A batch takes about 10 s under --exact; a hang (a watch on a descriptor-table page can make
  // KVM retry an instruction forever) costs the batch, not the test.
  Run run{run_process(argv, {.timeout = std::chrono::seconds(90)}), {}, {}};
  std::istringstream lines(run.process.stdout_text);
  for (std::string line; std::getline(lines, line);) run.lines.push_back(line);
  if (!stat_file.empty()) {
    std::ifstream file(stat_file);
    const std::string json((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
    const std::regex count_field("\"count\":([0-9]+)");
    for (auto it = std::sregex_iterator(json.begin(), json.end(), count_field);
         it != std::sregex_iterator(); ++it)
      run.counts.push_back(std::stoull((*it)[1]));
    std::remove(stat_file.c_str());
  }
  return run;
}

// "seed N ..." -> N, or fallback.
int seed_of(const std::string& line, int fallback) {
  int seed = 0;
  return std::sscanf(line.c_str(), "seed %d", &seed) == 1 ? seed : fallback;
}

std::string how_it_ended(const Run& run) {
  // drvm's line that says why the run ended (a warning may come first), else its first line.
  std::istringstream lines(run.process.stderr_text);
  std::string reason, line;
  while (std::getline(lines, line) && reason.empty())
    for (const char* what : {"triple fault", "internal error", "timeout", "failed", "halted"})
      if (line.find(what) != std::string::npos) reason = line;
  if (reason.empty())
    reason = run.process.stderr_text.substr(0, run.process.stderr_text.find('\n'));
  std::string status = describe(run.process);
  status.resize(status.find(';'));
  return "<no more lines: " + status + ": " + reason + ">";
}

// Empty when the two runs printed the same lines and ended alike; else which seed differs first.
std::string compare(const Run& reference, Mode reference_mode, const Run& other, Mode other_mode,
                    int first, const std::string& layout) {
  const std::size_t common = std::min(reference.lines.size(), other.lines.size());
  std::size_t index = 0;
  while (index < common && reference.lines[index] == other.lines[index]) ++index;
  if (index == reference.lines.size() && index == other.lines.size() &&
      reference.process.exit_status == other.process.exit_status)
    return "";
  const std::string left =
      index < reference.lines.size() ? reference.lines[index] : how_it_ended(reference);
  const std::string right = index < other.lines.size() ? other.lines[index] : how_it_ended(other);
  const int seed = seed_of(index < reference.lines.size() ? left : right, first);
  std::ostringstream out;
  out << "first difference at seed " << seed << " (batch from seed " << first << "), "
      << name(other_mode) << " vs " << name(reference_mode) << ":\n  " << name(reference_mode)
      << ": " << left << "\n  " << name(other_mode) << ": " << right
      << "\n  reproduce: " << reproduce(reference_mode, seed, layout) << "\n             "
      << reproduce(other_mode, seed, layout) << "\n";
  return out.str();
}

struct BatchResult {
  std::vector<std::string> failures;
  std::size_t debug_exceptions = 0;              // #DB lines under --exact
  std::size_t programs = 0;                      // 'end' lines under --exact
  std::vector<unsigned long long> exact_counts;  // (d)'s host counts
};

BatchResult run_batch(int first, int count, const std::string& layout) {
  const Run a = run_mode(Mode::kDefault, first, count, layout);
  const Run b = run_mode(Mode::kExact, first, count, layout);
  const Run c = run_mode(Mode::kDefaultEvents, first, count, layout);
  const Run d = run_mode(Mode::kExactEvents, first, count, layout);
  BatchResult result;
  result.exact_counts = d.counts;
  for (const std::string& line : b.lines) {
    result.debug_exceptions += line.find(" db ") != std::string::npos;
    result.programs += line.find(" end ") != std::string::npos;
  }
  // --exact is the reference for every other mode.
  for (const auto& [run, mode] :
       {std::pair{&a, Mode::kDefault}, std::pair{&c, Mode::kDefaultEvents},
        std::pair{&d, Mode::kExactEvents}}) {
    std::string difference = compare(b, Mode::kExact, *run, mode, first, layout);
    if (!difference.empty()) result.failures.push_back(difference);
  }
  if (b.process.exit_status != exit_port_status(kGuestSuccess))
    result.failures.push_back("seeds from " + std::to_string(first) +
                              ": --exact itself did not finish: " + describe(b.process));
  // Counts are only comparable when both host-event runs did the same guest work to the end.
  const bool same_guest_work =
      c.lines == b.lines && d.lines == b.lines && c.process.exit_status == d.process.exit_status;
  if (same_guest_work && (c.counts != d.counts || c.counts.size() != kHostEvents.size())) {
    std::ostringstream out;
    out << "seeds " << first << "-" << first + count - 1 << ": host counts differ, (c) vs (d):\n";
    for (std::size_t i = 0; i < kHostEvents.size(); ++i)
      out << "  " << kHostEvents[i] << ": "
          << (i < c.counts.size() ? std::to_string(c.counts[i]) : "-") << " vs "
          << (i < d.counts.size() ? std::to_string(d.counts[i]) : "-") << "\n";
    out << "  reproduce: " << reproduce(Mode::kDefaultEvents, first, layout) << " (count=" << count
        << ")\n";
    result.failures.push_back(out.str());
  }
  return result;
}

class Drfuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not usable";
  }
};

// The image itself: count programs from the first seed, in order, each ending in one 'end' line,
// some of them raising #DBs, the same lines on a second run (nothing depends on timing).
TEST_F(Drfuzz, RunsCountProgramsPerSeedDeterministically) {
  const std::vector<std::string> argv = {
      DRVM_BINARY, "run",       guest_image_path("drfuzz"), "--exact", "--timeout",
      "60",        "--cmdline", cmdline(40, 12, "all")};
  const ProcessResult first = run_process(argv, {.timeout = std::chrono::seconds(90)});
  ASSERT_EQ(first.exit_status, exit_port_status(kGuestSuccess)) << describe(first);
  std::vector<int> ended;
  std::size_t debug_exceptions = 0;
  std::istringstream lines(first.stdout_text);
  for (std::string line; std::getline(lines, line);) {
    int seed = -1;
    if (std::sscanf(line.c_str(), "seed %d end events=", &seed) == 1 &&
        line.find(" end events=") != std::string::npos)
      ended.push_back(seed);
    debug_exceptions += line.find(" db step=") != std::string::npos;
  }
  std::vector<int> expected(12);
  for (int i = 0; i < 12; ++i) expected[i] = 40 + i;
  EXPECT_EQ(ended, expected) << first.stdout_text;
  EXPECT_GT(debug_exceptions, 0u) << first.stdout_text;
  EXPECT_NE(first.stdout_text.find("drfuzz: 12 programs\n"), std::string::npos);
  const ProcessResult second = run_process(argv, {.timeout = std::chrono::seconds(90)});
  EXPECT_EQ(second.stdout_text, first.stdout_text);
}

// verbose=1 lists each program (DR7, DR0-3 and the steps); an unknown layout is refused.
TEST_F(Drfuzz, VerboseListsTheProgramAndLayoutIsChecked) {
  const ProcessResult verbose =
      run_process({DRVM_BINARY, "run", guest_image_path("drfuzz"), "--exact", "--timeout", "30",
                   "--cmdline", cmdline(7, 1, "plain", true)},
                  {.timeout = std::chrono::seconds(60)});
  EXPECT_EQ(verbose.exit_status, exit_port_status(kGuestSuccess)) << describe(verbose);
  EXPECT_NE(verbose.stdout_text.find("seed 7 program dr7="), std::string::npos)
      << verbose.stdout_text;
  EXPECT_NE(verbose.stdout_text.find("seed 7 step 1 "), std::string::npos) << verbose.stdout_text;
  const ProcessResult bad =
      run_process({DRVM_BINARY, "run", guest_image_path("drfuzz"), "--cmdline", "layout=nowhere"});
  EXPECT_EQ(bad.exit_status, exit_port_status(1)) << describe(bad);
  EXPECT_NE(bad.stdout_text.find("drfuzz: unknown layout 'nowhere'"), std::string::npos);
}

// INT n with a vector above the exception vectors (intn=high: 0x21), which drvm delivers itself on
// KVM's instruction emulator: the handler runs and returns past the INT, under both engines.
TEST_F(Drfuzz, IntNAboveTheExceptionVectorsIsDelivered) {
  std::string outputs[2];
  for (int exact = 0; exact < 2; ++exact) {
    std::vector<std::string> argv = {DRVM_BINARY,
                                     "run",
                                     guest_image_path("drfuzz"),
                                     "--timeout",
                                     "60",
                                     "--cmdline",
                                     "seed=0 count=8 layout=plain intn=high"};
    if (exact) argv.push_back("--exact");
    const ProcessResult run = run_process(argv, {.timeout = std::chrono::seconds(90)});
    ASSERT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
    outputs[exact] = run.stdout_text;
  }
  EXPECT_EQ(outputs[0], outputs[1]);
  std::size_t interrupts = 0;
  std::istringstream lines(outputs[0]);
  for (std::string line; std::getline(lines, line);) {
    const auto at = line.find(" ints=");
    if (at != std::string::npos) interrupts += std::stoul(line.substr(at + 6));
  }
  EXPECT_GT(interrupts, 0u) << outputs[0];
}

TEST_F(Drfuzz, DefaultEnginesMatchExactWithAndWithoutHostEvents) {
  const int seeds = std::stoi(env_or("DRVM_FUZZ_SEEDS", "500"));
  const std::string layout = env_or("DRVM_FUZZ_LAYOUT", "all");
  const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::future<BatchResult>> pending;
  std::vector<BatchResult> results;
  for (int first = 0; first < seeds; first += kBatch) {
    if (pending.size() >= workers) {
      results.push_back(pending.front().get());
      pending.erase(pending.begin());
    }
    pending.push_back(
        std::async(std::launch::async, run_batch, first, std::min(kBatch, seeds - first), layout));
  }
  for (auto& future : pending) results.push_back(future.get());

  std::size_t programs = 0, debug_exceptions = 0, failures = 0;
  std::vector<unsigned long long> exact_counts(kHostEvents.size());
  for (const BatchResult& result : results) {
    for (std::size_t i = 0; i < result.exact_counts.size() && i < exact_counts.size(); ++i)
      exact_counts[i] += result.exact_counts[i];
    programs += result.programs;
    debug_exceptions += result.debug_exceptions;
    for (const std::string& failure : result.failures) {
      ADD_FAILURE() << failure;
      ++failures;
    }
  }
  // Not vacuous: --exact ran every program and they raised #DBs.
  EXPECT_EQ(programs, static_cast<std::size_t>(seeds));
  EXPECT_GT(debug_exceptions, static_cast<std::size_t>(seeds));
  for (std::size_t i = 0; i < kHostEvents.size(); ++i)
    EXPECT_GT(exact_counts[i], 0u) << kHostEvents[i] << " never hit under --exact";
  std::cout << "drfuzz: " << seeds << " seeds (layout=" << layout << "), " << debug_exceptions
            << " guest #DBs under --exact, " << failures << " divergent batches\n";
}

}  // namespace
}  // namespace drvm::test
