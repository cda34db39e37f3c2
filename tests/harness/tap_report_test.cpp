#include "harness/tap_report.hpp"

#include <gtest/gtest.h>

#include "report_fixture.hpp"

namespace drvm::harness {
namespace {

TEST(TapReport, Version13WithPlanAndDiagnostics) {
  testing::ReportFixture fixture;
  fixture.add(0, "hello", true);
  auto& failed = fixture.add(1, "watch #3", false);
  failed.verdict.reasons = {"say \"hi\"\x1b \\ done"};
  failed.verdict.serial_diff = "--- golden\n+++ actual\n@@ -1,1 +1,1 @@\n-a\n+b\n";
  failed.run.child.err = "  RIP=0x10\n";
  failed.run.outcome = classify(6 << 8, false);

  EXPECT_EQ(tap_report(fixture.results),
            "TAP version 13\n"
            "1..2\n"
            "ok 1 - boot/hello\n"
            "not ok 2 - dr & co/watch \\#3\n"
            "  ---\n"
            "  message: \"say \\\"hi\\\"\\x1b \\\\ done\"\n"
            "  reasons:\n"
            "    - \"say \\\"hi\\\"\\x1b \\\\ done\"\n"
            "  outcome: \"halt (status 6)\"\n"
            "  duration_ms: 250\n"
            "  diff: |2\n"
            "    --- golden\n"
            "    +++ actual\n"
            "    @@ -1,1 +1,1 @@\n"
            "    -a\n"
            "    +b\n"
            "  stderr: |2\n"
            "      RIP=0x10\n"
            "  ...\n");
}

TEST(TapReport, EmptyRunHasAnEmptyPlan) {
  EXPECT_EQ(tap_report({}), "TAP version 13\n1..0\n");
}

}  // namespace
}  // namespace drvm::harness
