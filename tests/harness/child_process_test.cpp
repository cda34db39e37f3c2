#include "harness/child_process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <system_error>

namespace drvm::harness {
namespace {

using namespace std::chrono_literals;

ChildResult sh(const std::string& script, std::chrono::milliseconds deadline = 10s,
               std::size_t limit = 16u << 20) {
  return run_child({{"/bin/sh", "-c", script}, deadline, limit});
}

TEST(ChildProcess, CapturesBothStreamsAndTheStatus) {
  const ChildResult result = sh("printf 'serial\\r\\n'; echo message >&2; exit 7");
  EXPECT_EQ(result.out, "serial\r\n");
  EXPECT_EQ(result.err, "message\n");
  ASSERT_TRUE(WIFEXITED(result.wait_status));
  EXPECT_EQ(WEXITSTATUS(result.wait_status), 7);
  EXPECT_FALSE(result.killed_at_deadline);
}

TEST(ChildProcess, LargeInterleavedOutputOnBothStreamsDoesNotDeadlock) {
  // Far more than a pipe buffer (64 KiB) on each stream, alternating.
  const ChildResult result =
      sh("i=0; while [ $i -lt 64 ]; do head -c 16384 /dev/zero; head -c 16384 /dev/zero >&2;"
         " i=$((i+1)); done");
  EXPECT_EQ(result.out.size(), 1u << 20);
  EXPECT_EQ(result.err.size(), 1u << 20);
  EXPECT_EQ(WEXITSTATUS(result.wait_status), 0);
}

TEST(ChildProcess, CaptureLimitDropsTheRestButKeepsReading) {
  const ChildResult result = sh("head -c 300000 /dev/zero; exit 3", 10s, 1000);
  EXPECT_EQ(result.out.size(), 1000u);
  EXPECT_TRUE(result.out_truncated);
  EXPECT_FALSE(result.err_truncated);
  EXPECT_EQ(WEXITSTATUS(result.wait_status), 3);
}

TEST(ChildProcess, KilledAtTheHardDeadline) {
  const ChildResult result = sh("echo started; exec sleep 60", 300ms);
  EXPECT_TRUE(result.killed_at_deadline);
  ASSERT_TRUE(WIFSIGNALED(result.wait_status));
  EXPECT_EQ(WTERMSIG(result.wait_status), SIGKILL);
  EXPECT_EQ(result.out, "started\n");
  EXPECT_LT(result.wall, 5s);
}

TEST(ChildProcess, AChildThatClosesItsOutputAndHangsIsStillKilled) {
  const ChildResult result = sh("exec >&- 2>&-; sleep 60", 300ms);
  EXPECT_TRUE(result.killed_at_deadline);
  EXPECT_LT(result.wall, 5s);
}

TEST(ChildProcess, AGrandchildHoldingThePipesDoesNotHoldTheHarness) {
  const ChildResult result = sh("sleep 60 & echo parent done", 10s);
  EXPECT_FALSE(result.killed_at_deadline);
  EXPECT_EQ(result.out, "parent done\n");
  EXPECT_LT(result.wall, 5s);
}

TEST(ChildProcess, DeathBySignalIsReported) {
  const ChildResult result = sh("kill -SEGV $$");
  ASSERT_TRUE(WIFSIGNALED(result.wait_status));
  EXPECT_EQ(WTERMSIG(result.wait_status), SIGSEGV);
  EXPECT_FALSE(result.killed_at_deadline);
}

TEST(ChildProcess, StdinIsEmpty) {
  EXPECT_EQ(sh("cat; echo end").out, "end\n");
}

TEST(ChildProcess, MissingProgramThrows) {
  EXPECT_THROW(run_child({{"/nonexistent/drvm", "run"}, 1s, 100}), std::system_error);
}

}  // namespace
}  // namespace drvm::harness
