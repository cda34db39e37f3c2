// Serial pattern matching against adversarial output: std::regex recursed per character and
// crashed the harness on a 20,000-character line, and backtracked for minutes on `(\w+)*:`.
#include "harness/verdict.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

namespace drvm::harness {
namespace {

Case case_with(std::vector<std::string> require, std::vector<std::string> forbid) {
  const std::string text = [&] {
    std::string t = "[[case]]\nimage = 'a.elf'\nserial.require = [";
    for (const auto& p : require) t += "'" + p + "',";
    t += "]\nserial.forbid = [";
    for (const auto& p : forbid) t += "'" + p + "',";
    return t + "]\n";
  }();
  return parse_manifest(text, "/suites/s.toml").cases.at(0);
}

CaseRun exited_with(std::string out) {
  CaseRun run;
  run.outcome.kind = OutcomeKind::Exit;
  run.outcome.exit_value = 0;
  run.outcome.status = 1;
  run.child.out = std::move(out);
  return run;
}

TEST(Verdict, LongLinesWithNestedRepetitionMatchInLinearTime) {
  const std::string line(200000, 'A');
  const Case test = case_with({"^(A|B)*$"}, {"(\\w+)*:"});
  const auto start = std::chrono::steady_clock::now();
  const Verdict verdict = judge(test, exited_with("boot\n" + line + "\n"), false);
  EXPECT_TRUE(verdict.passed) << (verdict.reasons.empty() ? "" : verdict.reasons[0]);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(Verdict, WholeLinesAreMatchedHoweverLong) {
  // The end of a long line is seen too (std::regex only saw its first 16 KiB).
  const Case test = case_with({"^x*END$"}, {"PANIC"});
  const std::string out = std::string(100000, 'x') + "END\n" + std::string(50000, 'y') + "PANIC\n";
  const Verdict verdict = judge(test, exited_with(out), false);
  ASSERT_EQ(verdict.reasons.size(), 1u);
  EXPECT_NE(verdict.reasons[0].find("serial line 2 matches forbidden /PANIC/"), std::string::npos);
}

TEST(Verdict, MatchingStopsAtTheDeadline) {
  const Case test = case_with({"^never$"}, {});
  const Verdict verdict = judge(test, exited_with("a\nb\n"), false,
                                std::chrono::steady_clock::now() - std::chrono::seconds(1));
  ASSERT_EQ(verdict.reasons.size(), 1u);
  EXPECT_NE(verdict.reasons[0].find("did not finish within the case's timeout"), std::string::npos)
      << verdict.reasons[0];
}

// Fuzz: random guest bytes (long lines, control bytes, invalid UTF-8) against patterns built
// to backtrack; every run must finish quickly with a verdict.
TEST(Verdict, RandomOutputAgainstBacktrackingPatternsFinishes) {
  const Case test = case_with({"^(A|B)*$", "(a*)*b", "^(\\w+\\s?)*$"}, {"(x+x+)+y", "(.*a){12}"});
  std::mt19937 random(14);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 40; ++i) {
    std::string out;
    const std::size_t size = random() % 60000;
    const char alphabet[] = {'A', 'B', 'a', 'x', ' ', '\n', '\r', '\0', '\xff', '\xc3'};
    for (std::size_t j = 0; j < size; ++j) {
      out.push_back(random() % 50 == 0 ? alphabet[random() % sizeof alphabet]
                                       : alphabet[random() % 4]);
    }
    (void)judge(test, exited_with(out), false);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

}  // namespace
}  // namespace drvm::harness
