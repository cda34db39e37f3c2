#include "harness/console_report.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

#include "harness/text_escape.hpp"

namespace drvm::harness {
namespace {

constexpr std::size_t kMaxStderrLines = 80;
// A line longer than this (a guest printing megabytes without a newline) is cut in reports.
constexpr std::size_t kMaxLineBytes = 200;

std::string indented(std::string_view text, std::size_t max_lines) {
  std::string out;
  std::size_t lines = 0, total = 0;
  const std::string printable = printable_text(bounded_text(text, kMaxLineBytes, SIZE_MAX), true);
  std::size_t pos = 0;
  while (pos < printable.size()) {
    const std::size_t end = std::min(printable.find('\n', pos), printable.size());
    if (lines < max_lines) {
      out += fmt::format("    {}\n", std::string_view(printable).substr(pos, end - pos));
      ++lines;
    }
    ++total;
    pos = end + 1;
  }
  if (total > lines) out += fmt::format("    ... {} more lines\n", total - lines);
  return out;
}

// The command that reproduces the case, quoted for a POSIX shell.
std::string command_line(const CaseRun& run) {
  const std::vector<std::string>& argv = run.repro_argv.empty() ? run.argv : run.repro_argv;
  std::string out;
  for (const std::string& arg : argv) {
    out += out.empty() ? "" : " ";
    out += shell_quote(arg);
  }
  return printable_text(out, false);
}

std::size_t terminal_width(std::FILE* stream) {
  winsize size{};
  if (ioctl(fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace

std::string verdict_word(const Verdict& verdict) {
  if (verdict.passed) return "PASS";
  if (verdict.interrupted) return "INTERRUPTED";
  if (verdict.skipped) return "NOT RUN";
  return verdict.error ? "ERROR" : "FAIL";
}

Progress::Progress(std::FILE* stream, bool live, std::size_t total)
    : stream_(stream), live_(live), total_(total) {}

void Progress::started(const std::string& name) {
  running_.push_back(name);
  if (live_) redraw();
}

void Progress::finished(const CaseResult& result) {
  const std::string name = result.selected.full_name();
  running_.erase(std::remove(running_.begin(), running_.end(), name), running_.end());
  ++finished_;
  const bool passed = result.verdict.passed;
  if (!passed && !result.verdict.interrupted && !result.verdict.skipped) ++failed_;
  const std::string status =
      passed ? (result.verdict.golden_updated ? "PASS (golden updated)" : "PASS")
             : verdict_word(result.verdict);
  const int width = static_cast<int>(fmt::formatted_size("{}", total_));
  const std::string line =
      fmt::format("[{:>{}}/{}] {} {} ({:.2f} s)", finished_, width, total_, status,
                  printable_text(name, false), result.run.child.wall.count());
  if (!live_) {
    fmt::print(stream_, "{}\n", line);
  } else {
    if (!passed || result.verdict.golden_updated) {
      clear_line();
      fmt::print(stream_, "{}\n", line);
    }
    redraw();
  }
  std::fflush(stream_);
}

void Progress::done() {
  if (live_) clear_line();
  std::fflush(stream_);
}

void Progress::clear_line() {
  fmt::print(stream_, "\r\x1b[K");
}

void Progress::redraw() {
  std::string line = fmt::format("[{}/{}] {} failed", finished_, total_, failed_);
  if (!running_.empty()) {
    line += " | running: ";
    for (std::size_t i = 0; i < running_.size(); ++i) {
      line += (i ? ", " : "") + printable_text(running_[i], false);
    }
  }
  // Wider than the terminal would wrap, and "\r" would then redraw only the last row.
  const std::size_t width = terminal_width(stream_);
  if (line.size() >= width) line = line.substr(0, width > 4 ? width - 4 : 0) + "...";
  clear_line();
  fmt::print(stream_, "{}", line);
  std::fflush(stream_);
}

std::string failure_details(const CaseResult& result) {
  const Verdict& verdict = result.verdict;
  std::string out = fmt::format("{} {} ({})\n", verdict_word(verdict),
                                printable_text(result.selected.full_name(), false),
                                result.selected.test->location);
  for (const std::string& reason : verdict.reasons) out += fmt::format("  {}\n", reason);
  if (!result.run.argv.empty()) out += fmt::format("  command: {}\n", command_line(result.run));
  if (result.run.recording) {
    out += fmt::format("  recording: {} (replay it: drvm replay {} --gdb 1234)\n",
                       result.run.recording->string(), result.run.recording->string());
  }
  if (!verdict.serial_diff.empty()) {
    out += "  serial diff:\n" + indented(verdict.serial_diff, SIZE_MAX);
  } else if (!result.run.child.out.empty() && !result.selected.test->serial.golden) {
    out += "  serial output (last lines):\n";
    const std::string& serial = result.run.child.out;
    std::size_t start = serial.size();
    for (int lines = 0; start > 0 && lines < 21; --start) lines += serial[start - 1] == '\n';
    out += indented(std::string_view(serial).substr(start), SIZE_MAX);
  }
  if (!result.run.child.err.empty()) {
    out += "  drvm stderr:\n" + indented(result.run.child.err, kMaxStderrLines);
  }
  return out;
}

std::string verbose_details(const CaseResult& result) {
  std::string out =
      fmt::format("--- {}\n  command: {}\n", printable_text(result.selected.full_name(), false),
                  command_line(result.run));
  out += "  serial output:\n" + indented(result.run.child.out, SIZE_MAX);
  out += "  drvm stderr:\n" + indented(result.run.child.err, SIZE_MAX);
  return out;
}

std::string summary_line(const std::vector<CaseResult>& results, double wall_seconds) {
  std::size_t passed = 0, failed = 0, errors = 0, interrupted = 0, updated = 0, not_run = 0;
  for (const CaseResult& result : results) {
    if (result.verdict.passed) {
      ++passed;
    } else if (result.verdict.interrupted) {
      ++interrupted;
    } else if (result.verdict.skipped) {
      ++not_run;
    } else {
      ++(result.verdict.error ? errors : failed);
    }
    if (result.verdict.golden_updated) ++updated;
  }
  std::string out = fmt::format("{} passed, {} failed", passed, failed);
  if (errors) out += fmt::format(", {} error{}", errors, errors == 1 ? "" : "s");
  if (interrupted) out += fmt::format(", {} interrupted", interrupted);
  if (not_run) out += fmt::format(", {} not run (--fail-fast)", not_run);
  out += fmt::format(" ({} case{}, {:.1f} s)", results.size(), results.size() == 1 ? "" : "s",
                     wall_seconds);
  if (updated) out += fmt::format("; {} golden file{} updated", updated, updated == 1 ? "" : "s");
  return out;
}

}  // namespace drvm::harness
