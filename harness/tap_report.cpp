#include "harness/tap_report.hpp"

#include <fmt/format.h>

#include "harness/outcome.hpp"
#include "harness/text_escape.hpp"

namespace drvm::harness {
namespace {

// A TAP description may not contain '#' unescaped (it starts a directive).
std::string description(std::string_view name) {
  std::string out;
  for (const char ch : printable_text(name, false)) {
    if (ch == '#' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

// A YAML double-quoted scalar: quote and backslash escaped first, then non-printable bytes
// become \xNN, which is itself a YAML escape.
std::string yaml_quoted(std::string_view text) {
  std::string escaped;
  for (const char ch : text) {
    if (ch == '"' || ch == '\\') escaped += '\\';
    escaped += ch;
  }
  return "\"" + printable_text(escaped, false) + "\"";
}

// A YAML literal block indented two columns under its key; the explicit indentation indicator
// keeps lines that start with spaces intact.
std::string yaml_block(std::string_view text, std::string_view indent) {
  std::string out = "|2\n";
  // Bounded: a guest's runaway line or flood must not make the stream unreadable.
  const std::string printable = printable_text(bounded_text(text, 4096, 256 * 1024), true);
  std::size_t pos = 0;
  while (pos < printable.size()) {
    const std::size_t end = std::min(printable.find('\n', pos), printable.size());
    out += fmt::format("{}{}\n", indent, std::string_view(printable).substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

std::string tap_report(const std::vector<CaseResult>& results) {
  std::string out = fmt::format("TAP version 13\n1..{}\n", results.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    const CaseResult& result = results[i];
    const Verdict& verdict = result.verdict;
    if (verdict.skipped) {
      out += fmt::format("ok {} - {} # SKIP {}\n", i + 1, description(result.selected.full_name()),
                         description(verdict.reasons.front()));
      continue;
    }
    out += fmt::format("{} {} - {}{}\n", verdict.passed ? "ok" : "not ok", i + 1,
                       description(result.selected.full_name()),
                       verdict.interrupted ? " # interrupted" : "");
    if (verdict.passed) continue;
    out += "  ---\n";
    out += fmt::format("  message: {}\n", yaml_quoted(verdict.reasons.front()));
    out += "  reasons:\n";
    for (const std::string& reason : verdict.reasons) {
      out += fmt::format("    - {}\n", yaml_quoted(reason));
    }
    if (!result.run.start_error && !verdict.interrupted) {
      out += fmt::format("  outcome: {}\n", yaml_quoted(describe(result.run.outcome)));
    }
    out += fmt::format("  duration_ms: {:.0f}\n", result.run.child.wall.count() * 1000);
    if (!verdict.serial_diff.empty()) {
      out += "  diff: " + yaml_block(verdict.serial_diff, "    ");
    }
    if (!result.run.child.err.empty()) {
      out += "  stderr: " + yaml_block(result.run.child.err, "    ");
    }
    out += "  ...\n";
  }
  return out;
}

}  // namespace drvm::harness
