#include "harness/verdict.hpp"

#include <fmt/format.h>

#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>

#include "harness/golden.hpp"
#include "harness/line_diff.hpp"
#include "harness/property_tree_json.hpp"
#include "harness/text_escape.hpp"

namespace drvm::harness {
namespace {

// Serial lines without their terminator; a trailing '\r' (serial "\r\n") is dropped too so that
// '$' anchors work.
std::vector<std::string_view> serial_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

enum class Match { kFound, kNone, kOutOfTime };

// RE2 is linear in each line, and the deadline is checked between lines, so matching ends within
// the case's time whatever the guest printed.
Match any_line_matches(const std::vector<std::string_view>& lines, const re2::RE2& regex,
                       std::chrono::steady_clock::time_point deadline, std::size_t& which) {
  for (which = 0; which < lines.size(); ++which) {
    if (std::chrono::steady_clock::now() > deadline) return Match::kOutOfTime;
    if (line_matches(regex, lines[which])) return Match::kFound;
  }
  return Match::kNone;
}

std::string describe(const CountRange& range) {
  if (range.min == range.max) return std::to_string(range.min);
  if (range.max >= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return fmt::format("at least {}", range.min);
  }
  if (range.min == 0) return fmt::format("at most {}", range.max);
  return fmt::format("{} to {}", range.min, range.max);
}

// Compares the counts of drvm run's `--stat --json` output (docs/events-guide.md) with the case's
// expectations; events are matched by their spec string.
void judge_events(const Case& test, const CaseRun& run, Verdict& verdict) {
  if (!run.stat_json) {
    verdict.reasons.push_back("drvm run wrote no event counts (its --stat-output file is missing)");
    return;
  }
  std::map<std::string, std::uint64_t, std::less<>> counts;
  try {
    boost::property_tree::ptree stat;
    std::istringstream text(*run.stat_json);
    boost::property_tree::read_json(text, stat);
    for (const auto& [key, event] : stat.get_child("events")) {
      counts[event.get<std::string>("spec")] = event.get<std::uint64_t>("count");
    }
  } catch (const std::exception& e) {
    verdict.reasons.push_back(
        fmt::format("cannot read drvm run's event counts: {}; is drvm test from the same build "
                    "as drvm run?",
                    e.what()));
    return;
  }
  for (const EventExpectation& event : test.events) {
    const auto found = counts.find(event.spec);
    if (found == counts.end()) {
      verdict.reasons.push_back(
          fmt::format("event {} is missing from drvm run's counts", event.spec));
    } else if (!event.count.contains(found->second)) {
      verdict.reasons.push_back(fmt::format("event {} counted {}, expected {}", event.spec,
                                            found->second, describe(event.count)));
    }
  }
}

void judge_golden(const Case& test, const CaseRun& run, bool outcome_ok, bool update_golden,
                  Verdict& verdict) {
  const auto& file = *test.serial.golden;
  const auto golden = read_golden(file);
  if (golden && *golden == run.child.out) return;
  if (update_golden && outcome_ok && !run.child.out_truncated) {
    try {
      write_golden(file, run.child.out);
      verdict.golden_updated = true;
      return;
    } catch (const std::exception& e) {
      verdict.reasons.push_back(fmt::format("cannot update golden file: {}", e.what()));
      return;
    }
  }
  if (!golden) {
    verdict.reasons.push_back(fmt::format(
        "golden file {} does not exist or is unreadable; run with --update-golden to create it",
        file.string()));
    return;
  }
  verdict.reasons.push_back(fmt::format("serial output differs from golden file {}{}",
                                        file.string(),
                                        update_golden ? " (not updated: the run did not end as "
                                                        "expected)"
                                                      : ""));
  verdict.serial_diff = unified_diff(*golden, run.child.out, file.string(), "actual serial output");
}

}  // namespace

Verdict not_run_verdict() {
  Verdict verdict;
  verdict.skipped = true;
  verdict.reasons.push_back("not run: --fail-fast stopped after an earlier case failed");
  return verdict;
}

Verdict judge(const Case& test, const CaseRun& run, bool update_golden,
              std::chrono::steady_clock::time_point match_deadline) {
  Verdict verdict;
  if (run.interrupted) {
    verdict.interrupted = true;
    verdict.reasons.push_back("interrupted");
    return verdict;
  }
  if (run.start_error) {
    verdict.error = true;
    verdict.reasons.push_back(*run.start_error);
    return verdict;
  }
  const OutcomeKind kind = run.outcome.kind;
  verdict.error =
      kind == OutcomeKind::Error || kind == OutcomeKind::Crash || kind == OutcomeKind::Hung;

  const bool outcome_ok = matches(run.outcome, test.expect);
  if (!outcome_ok) {
    verdict.reasons.push_back(
        fmt::format("expected {}, got {}", describe(test.expect), describe(run.outcome)));
  }
  if (run.child.out_truncated) {
    verdict.reasons.push_back("serial output exceeded the capture limit; the rest was dropped");
  }

  if (test.serial.golden) judge_golden(test, run, outcome_ok, update_golden, verdict);
  const auto lines = serial_lines(run.child.out);
  std::size_t which = 0;
  auto out_of_time = [&](const LinePattern& pattern) {
    verdict.reasons.push_back(fmt::format(
        "matching /{}/ against the serial output did not finish within the case's timeout "
        "({} s); simplify the pattern or raise the timeout",
        printable_text(pattern.source, false), test.timeout_s));
  };
  for (const LinePattern& pattern : test.serial.require) {
    const Match match = any_line_matches(lines, *pattern.regex, match_deadline, which);
    if (match == Match::kOutOfTime) {
      out_of_time(pattern);
    } else if (match == Match::kNone) {
      verdict.reasons.push_back(fmt::format("no serial line matches required /{}/",
                                            printable_text(pattern.source, false)));
    }
  }
  for (const LinePattern& pattern : test.serial.forbid) {
    const Match match = any_line_matches(lines, *pattern.regex, match_deadline, which);
    if (match == Match::kOutOfTime) {
      out_of_time(pattern);
    } else if (match == Match::kFound) {
      verdict.reasons.push_back(
          fmt::format("serial line {} matches forbidden /{}/: {}", which + 1,
                      printable_text(pattern.source, false),
                      printable_text(bounded_text(lines[which], 200, SIZE_MAX), false)));
    }
  }

  if (!test.events.empty()) judge_events(test, run, verdict);
  verdict.passed = verdict.reasons.empty();
  return verdict;
}

}  // namespace drvm::harness
