#include "harness/junit_report.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "harness/text_escape.hpp"

namespace drvm::harness {
namespace {

// What one element may embed of a child's output: a guest's runaway line or flood must not make
// the report unreadable (or gigabytes large).
constexpr std::size_t kMaxLineBytes = 4096;
constexpr std::size_t kMaxEmbeddedBytes = 256 * 1024;

std::string attr(std::string_view text) {
  return xml_escape(bounded_text(text, kMaxLineBytes, kMaxEmbeddedBytes), true);
}
std::string text(std::string_view bytes) {
  return xml_escape(bounded_text(bytes, kMaxLineBytes, kMaxEmbeddedBytes), false);
}

std::string failure_text(const CaseResult& result) {
  std::string out;
  for (const std::string& reason : result.verdict.reasons) out += reason + "\n";
  if (!result.verdict.serial_diff.empty()) out += "\n" + result.verdict.serial_diff;
  const std::vector<std::string>& argv =
      result.run.repro_argv.empty() ? result.run.argv : result.run.repro_argv;
  if (!argv.empty()) {
    out += "\ncommand:";
    for (const std::string& arg : argv) out += " " + shell_quote(arg);
    out += "\n";
  }
  return out;
}

void append_case(std::string& xml, const CaseResult& result) {
  const double seconds = result.run.child.wall.count();
  xml += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\">\n",
                     attr(result.selected.suite->name), attr(result.selected.test->name), seconds);
  if (result.verdict.interrupted) {
    xml += "      <skipped message=\"interrupted\"/>\n";
  } else if (result.verdict.skipped) {
    xml += fmt::format("      <skipped message=\"{}\"/>\n", attr(result.verdict.reasons.front()));
  } else if (!result.verdict.passed) {
    const char* element = result.verdict.error ? "error" : "failure";
    const std::string& message = result.verdict.reasons.front();
    xml += fmt::format("      <{} message=\"{}\" type=\"{}\">{}</{}>\n", element, attr(message),
                       result.verdict.error ? "drvm.error" : "drvm.failure",
                       text(failure_text(result)), element);
  }
  xml += fmt::format("      <system-out>{}</system-out>\n", text(result.run.child.out));
  xml += fmt::format("      <system-err>{}</system-err>\n", text(result.run.child.err));
  xml += "    </testcase>\n";
}

}  // namespace

JunitContext current_junit_context() {
  JunitContext context;
  char host[256] = {};
  context.hostname = gethostname(host, sizeof host - 1) == 0 ? host : "localhost";
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  context.timestamp = stamp;
  return context;
}

std::string junit_xml(const std::vector<CaseResult>& results, const JunitContext& context) {
  std::vector<const Suite*> suites;
  for (const CaseResult& result : results) {
    if (std::find(suites.begin(), suites.end(), result.selected.suite) == suites.end()) {
      suites.push_back(result.selected.suite);
    }
  }
  struct Tally {
    std::size_t tests = 0, failures = 0, errors = 0, skipped = 0;
    double time = 0;
  };
  const auto tally = [&](const Suite* only) {
    Tally t;
    for (const CaseResult& result : results) {
      if (only && result.selected.suite != only) continue;
      ++t.tests;
      if (result.verdict.interrupted || result.verdict.skipped) {
        ++t.skipped;
      } else if (!result.verdict.passed) {
        ++(result.verdict.error ? t.errors : t.failures);
      }
      t.time += result.run.child.wall.count();
    }
    return t;
  };

  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  const Tally all = tally(nullptr);
  xml += fmt::format(
      "<testsuites name=\"drvm test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
      "skipped=\"{}\" time=\"{:.3f}\">\n",
      all.tests, all.failures, all.errors, all.skipped, all.time);
  for (std::size_t id = 0; id < suites.size(); ++id) {
    const Suite* suite = suites[id];
    const Tally t = tally(suite);
    xml += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" "
        "time=\"{:.3f}\" timestamp=\"{}\" hostname=\"{}\" id=\"{}\" package=\"{}\">\n",
        attr(suite->name), t.tests, t.failures, t.errors, t.skipped, t.time,
        attr(context.timestamp), attr(context.hostname), id, attr(suite->name));
    xml += "    <properties/>\n";
    for (const CaseResult& result : results) {
      if (result.selected.suite == suite) append_case(xml, result);
    }
    xml += "    <system-out/>\n    <system-err/>\n  </testsuite>\n";
  }
  xml += "</testsuites>\n";
  return xml;
}

}  // namespace drvm::harness
