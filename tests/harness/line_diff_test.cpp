#include "harness/line_diff.hpp"

#include <gtest/gtest.h>

#include <string>

namespace drvm::harness {
namespace {

std::string numbered(int from, int to) {
  std::string out;
  for (int i = from; i <= to; ++i) out += "line " + std::to_string(i) + "\n";
  return out;
}

TEST(LineDiff, EqualTextsGiveNothing) {
  EXPECT_EQ(unified_diff("a\nb\n", "a\nb\n"), "");
}

TEST(LineDiff, OneChangedLineWithContext) {
  const std::string expected = numbered(1, 10);
  std::string actual = expected;
  actual.replace(actual.find("line 5"), 6, "LINE 5");
  EXPECT_EQ(unified_diff(expected, actual, "golden", "actual"),
            "--- golden\n+++ actual\n"
            "@@ -2,7 +2,7 @@\n"
            " line 2\n line 3\n line 4\n-line 5\n+LINE 5\n line 6\n line 7\n line 8\n");
}

TEST(LineDiff, FarApartChangesGetSeparateHunks) {
  std::string expected = numbered(1, 30);
  std::string actual = expected;
  actual.replace(actual.find("line 2\n"), 7, "");             // line 2 removed
  actual.replace(actual.find("line 25\n"), 0, "inserted\n");  // before line 25
  const std::string diff = unified_diff(expected, actual);
  EXPECT_NE(diff.find("@@ -1,5 +1,4 @@\n line 1\n-line 2\n line 3\n"), std::string::npos) << diff;
  EXPECT_NE(diff.find("@@ -22,6 +21,7 @@\n line 22\n line 23\n line 24\n+inserted\n line 25\n"),
            std::string::npos)
      << diff;
}

TEST(LineDiff, InsertionIntoEmptyAndMissingFinalNewline) {
  EXPECT_EQ(unified_diff("", "hello\n"), "--- expected\n+++ actual\n@@ -0,0 +1,1 @@\n+hello\n");
  EXPECT_EQ(unified_diff("a\n", "a"),
            "--- expected\n+++ actual\n@@ -1,1 +1,1 @@\n-a\n+a\n\\ No newline at end of file\n");
}

TEST(LineDiff, ShowsControlBytesEscaped) {
  const std::string diff = unified_diff("ok\r\n", "ok\x1b[0m\r\n");
  EXPECT_NE(diff.find("-ok\\x0d\n+ok\\x1b[0m\\x0d\n"), std::string::npos) << diff;
}

TEST(LineDiff, BoundedOutput) {
  DiffLimits limits;
  limits.max_output_lines = 10;
  const std::string diff = unified_diff(numbered(1, 100), numbered(101, 200), "e", "a", limits);
  EXPECT_NE(diff.find("... 191 more diff lines not shown\n"), std::string::npos) << diff;
  // 2 header lines + 10 shown lines + the note.
  EXPECT_EQ(std::count(diff.begin(), diff.end(), '\n'), 13);
}

TEST(LineDiff, HugeInputsGetASummaryInsteadOfATable) {
  DiffLimits limits;
  limits.max_cells = 1000;
  const std::string diff =
      unified_diff("same\n" + numbered(1, 100), "same\n" + numbered(201, 300), "e", "a", limits);
  EXPECT_NE(diff.find("outputs differ from line 2: 100 expected lines vs 100 actual lines"),
            std::string::npos)
      << diff;
  EXPECT_NE(diff.find("-line 1\n+line 201\n"), std::string::npos) << diff;
}

}  // namespace
}  // namespace drvm::harness
