#include "harness/outcome.hpp"

#include <gtest/gtest.h>
#include <signal.h>

namespace drvm::harness {
namespace {

int exited(int status) {
  return status << 8;
}  // a waitpid status for exit(status)

TEST(Outcome, MapsDrvmRunStatuses) {
  struct Row {
    int status;
    OutcomeKind kind;
  };
  for (const Row row :
       {Row{1, OutcomeKind::Exit}, Row{7, OutcomeKind::Exit}, Row{255, OutcomeKind::Exit},
        Row{2, OutcomeKind::Error}, Row{4, OutcomeKind::Timeout}, Row{6, OutcomeKind::Halt},
        Row{8, OutcomeKind::Fault}, Row{10, OutcomeKind::Fault}, Row{0, OutcomeKind::Error},
        Row{12, OutcomeKind::Error}}) {
    const Outcome outcome = classify(exited(row.status), false);
    EXPECT_EQ(outcome.kind, row.kind) << "status " << row.status;
    EXPECT_EQ(outcome.status, row.status);
  }
  EXPECT_EQ(classify(exited(7), false).exit_value, 3u);
  EXPECT_EQ(classify(exited(255), false).exit_value, 127u);
}

TEST(Outcome, SignalsAreCrashesOrHangs) {
  const Outcome crash = classify(SIGSEGV, false);
  EXPECT_EQ(crash.kind, OutcomeKind::Crash);
  EXPECT_EQ(crash.signal, SIGSEGV);
  EXPECT_EQ(describe(crash), "crash: drvm killed by signal 11 (SIGSEGV)");
  EXPECT_EQ(classify(SIGKILL, true).kind, OutcomeKind::Hung);
}

TEST(Outcome, MatchesExpectations) {
  const Outcome exit3 = classify(exited(7), false);
  EXPECT_TRUE(matches(exit3, {ExpectedOutcome::Exit, 3}));
  EXPECT_FALSE(matches(exit3, {ExpectedOutcome::Exit, 0}));
  EXPECT_TRUE(matches(exit3, {ExpectedOutcome::Exit, std::nullopt}));
  EXPECT_FALSE(matches(exit3, {ExpectedOutcome::Halt, std::nullopt}));
  EXPECT_TRUE(matches(classify(exited(6), false), {ExpectedOutcome::Halt, std::nullopt}));
  EXPECT_TRUE(matches(classify(exited(4), false), {ExpectedOutcome::Timeout, std::nullopt}));
  EXPECT_TRUE(matches(classify(exited(8), false), {ExpectedOutcome::Fault, std::nullopt}));
  EXPECT_TRUE(matches(classify(exited(10), false), {ExpectedOutcome::Fault, std::nullopt}));
  // A harness kill is never the timeout a case can expect.
  EXPECT_FALSE(matches(classify(SIGKILL, true), {ExpectedOutcome::Timeout, std::nullopt}));
  EXPECT_FALSE(matches(classify(exited(2), false), {ExpectedOutcome::Exit, std::nullopt}));
}

TEST(Outcome, Descriptions) {
  EXPECT_EQ(describe(classify(exited(7), false)), "exit value 3 (status 7)");
  EXPECT_EQ(describe(classify(exited(4), false)), "timeout (status 4)");
  EXPECT_EQ(describe(classify(exited(6), false)), "halt (status 6)");
  EXPECT_EQ(describe(classify(exited(8), false)), "fault: triple fault (status 8)");
  EXPECT_EQ(describe(classify(exited(10), false)), "fault: KVM internal error (status 10)");
  EXPECT_EQ(describe(classify(exited(2), false)), "error: drvm run refused the case (status 2)");
  EXPECT_EQ(describe(classify(exited(12), false)), "error: undocumented status 12");
  EXPECT_EQ(describe(Expectation{ExpectedOutcome::Exit, 0}), "exit value 0");
  EXPECT_EQ(describe(Expectation{ExpectedOutcome::Exit, std::nullopt}), "exit (any value)");
  EXPECT_EQ(describe(Expectation{ExpectedOutcome::Fault, std::nullopt}), "fault");
}

}  // namespace
}  // namespace drvm::harness
