// The real gdb (`gdb -nx -batch`) against GdbServer and the fake target: proves that the target
// description and the protocol work with the actual client.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fake_target.hpp"
#include "gdbstub/gdb_server.hpp"

namespace drvm::gdbstub::testing {
namespace {

bool gdb_available() {
  return std::system("command -v gdb >/dev/null 2>&1") == 0;
}

// Runs gdb with the commands (bounded by `timeout`); returns stdout and stderr together.
std::string run_gdb(std::uint16_t port, const std::vector<std::string>& commands) {
  std::string command_line = "timeout 60 gdb -nx -batch -ex 'set remotetimeout 10'";
  command_line += fmt::format(" -ex 'target remote 127.0.0.1:{}'", port);
  for (const std::string& command : commands) command_line += " -ex '" + command + "'";
  command_line += " 2>&1";
  std::string output;
  FILE* pipe = ::popen(command_line.c_str(), "r");
  if (pipe == nullptr) return "<popen failed>";
  char buffer[4096];
  while (const std::size_t size = std::fread(buffer, 1, sizeof buffer, pipe)) {
    output.append(buffer, size);
  }
  ::pclose(pipe);
  return output;
}

class RealGdb : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gdb_available()) GTEST_SKIP() << "gdb is not installed";
    target.set_deliver_from_thread(true);
    ServerOptions options;
    options.log = [](std::string_view) {};
    server.emplace(target, options);
  }

  FakeTarget target;
  std::optional<GdbServer> server;
};

TEST_F(RealGdb, InspectsBreaksWatchesAndDetaches) {
  target.script_stop({StopEvent{StopReason::kTrap, 1, TrapCause::kWriteWatchpoint, 0x10020},
                      0x10020,
                      {0x78, 0x56, 0x34, 0x12},
                      3});
  const std::string output = run_gdb(server->port(), {
                                                         "info registers rip",
                                                         "x/4xb 0x10000",
                                                         "set *(char*)0x10004 = 0x55",
                                                         "x/1xb 0x10004",
                                                         "hbreak *0x10010",
                                                         "watch *(int*)0x10020",
                                                         "continue",
                                                         "info threads",
                                                         "detach",
                                                     });
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("rip            0x10000"), std::string::npos);
  EXPECT_NE(output.find("0x10000:\t0x00\t0x01\t0x02\t0x03"), std::string::npos);
  EXPECT_NE(output.find("0x10004:\t0x55"), std::string::npos);
  EXPECT_EQ(target.memory_byte(0x10004), 0x55);
  EXPECT_NE(output.find("Hardware assisted breakpoint 1 at 0x10010"), std::string::npos);
  EXPECT_NE(output.find("Hardware watchpoint 2: *(int*)0x10020"), std::string::npos);
  EXPECT_NE(output.find("Old value = 589439264"), std::string::npos);  // 0x23222120
  EXPECT_NE(output.find("New value = 305419896"), std::string::npos);  // 0x12345678
  EXPECT_NE(output.find("Thread 1 (vCPU 0)"), std::string::npos);
  EXPECT_NE(output.find("Thread 2 (vCPU 1)"), std::string::npos);
  EXPECT_NE(output.find("[Inferior 1 (Remote target) detached]"), std::string::npos);
  EXPECT_EQ(target.detach_count(), 1);
  EXPECT_TRUE(target.breakpoints().empty());
  EXPECT_EQ(output.find("Remote failure"), std::string::npos);
  EXPECT_EQ(output.find("Protocol error"), std::string::npos);
}

TEST_F(RealGdb, ShowsSystemAndDebugRegisters) {
  const std::string output = run_gdb(server->port(), {
                                                         "info registers cs",
                                                         "info registers fs_base",
                                                         "info registers cr0",
                                                         "info registers cr3",
                                                         "info registers efer",
                                                         "info registers dr0",
                                                         "info registers dr7",
                                                         "set $dr7 = (long)0x403",
                                                         "info registers dr7",
                                                     });
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("cs             0x10"), std::string::npos);
  EXPECT_NE(output.find("fs_base        0xf5000"), std::string::npos);
  EXPECT_NE(output.find("cr0            0x80000011          [ PE ET PG ]"), std::string::npos);
  EXPECT_NE(output.find("cr3            0x9000"), std::string::npos);
  EXPECT_NE(output.find("efer           0x500"), std::string::npos);
  EXPECT_NE(output.find("dr0            0x10040"), std::string::npos);
  EXPECT_NE(output.find("dr7            0x401               [ L0 RW0=0"), std::string::npos);
  EXPECT_NE(output.find("dr7            0x403"), std::string::npos);
  EXPECT_EQ(target.registers(1).dr7, 0x403u);
}

// DR6's BLD (bit 11) and RTM (bit 16) are active low: their reset value 1 means "not signalled".
TEST_F(RealGdb, Dr6ShowsOnlyTheConditionsSignalled) {
  Registers registers = target.registers(1);
  registers.dr6 = 0xffff0ff0;  // the architectural reset value: nothing signalled
  target.set_registers(1, registers);
  registers = target.registers(2);
  registers.dr6 = 0xfffe47f1;  // B0, BS, bus lock (BLD clear) and RTM (RTM clear)
  target.set_registers(2, registers);
  const std::string output =
      run_gdb(server->port(), {"info registers dr6", "thread 2", "info registers dr6"});
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("dr6            0xffff0ff0          [ BLD=no RTM=no ]"), std::string::npos);
  EXPECT_NE(output.find("dr6            0xfffe47f1          [ B0 BLD=yes BS RTM=yes ]"),
            std::string::npos);
}

TEST_F(RealGdb, StepsRunsMonitorCommandsAndSeesTheExit) {
  target.script_stop({StopEvent{StopReason::kExited, 1, TrapCause::kUnspecified, 0, 3}});
  const std::string output = run_gdb(server->port(), {
                                                         "stepi",
                                                         "info registers rip",
                                                         "monitor dr",
                                                         "break *0x10008",
                                                         "monitor dr",
                                                         "continue",
                                                     });
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("rip            0x10001"), std::string::npos);
  EXPECT_NE(output.find("0 breakpoints"), std::string::npos);
  EXPECT_NE(output.find("exited with code 03"), std::string::npos);
}

// reverse-stepi and reverse-continue reach the target as bs and bc on the stopped thread, and gdb
// shows where they stopped: a plain step back, a breakpoint hit going backwards.
TEST_F(RealGdb, ReverseStepiAndReverseContinueRunTheTargetBackwards) {
  target.set_can_reverse(true);
  target.script_reverse({StopEvent{StopReason::kTrap, 1, TrapCause::kSoftwareBreakpoint},
                         FakeTarget::kMemoryBase + 0x8});
  const std::string output = run_gdb(server->port(), {
                                                         "break *0x10008",
                                                         "reverse-continue",
                                                         "info registers rip",
                                                         "reverse-stepi",
                                                         "info registers rip",
                                                     });
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("Thread 1 hit Breakpoint 1, 0x0000000000010008 in ?? ()"),
            std::string::npos);
  EXPECT_NE(output.find("rip            0x10008"), std::string::npos);
  EXPECT_NE(output.find("0x0000000000010007 in ?? ()"), std::string::npos);
  EXPECT_NE(output.find("rip            0x10007"), std::string::npos);
  EXPECT_EQ(target.reverse_resumes(), (std::vector<FakeTarget::ReverseCall>{
                                          {1, ThreadAction::kContinue}, {1, ThreadAction::kStep}}));
  EXPECT_TRUE(target.resumes().empty());  // nothing ran forwards
  EXPECT_EQ(output.find("Remote failure"), std::string::npos);
}

TEST_F(RealGdb, RunningOutOfHistoryIsReported) {
  target.set_can_reverse(true);
  StopEvent start{StopReason::kTrap, 1};
  start.history_start = true;
  target.script_reverse({start, 0xf000});
  const std::string output = run_gdb(server->port(), {"reverse-continue", "info registers rip"});
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("No more reverse-execution history.\n0x000000000000f000 in ?? ()"),
            std::string::npos);
  EXPECT_NE(output.find("rip            0xf000"), std::string::npos);
}

TEST_F(RealGdb, ARefusalShowsTheTargetsMessage) {
  target.set_can_reverse(true);
  target.script_reverse(
      {StopEvent{}, std::nullopt, Status::failure(0x5f, "drvm: reverse execution needs one vCPU")});
  const std::string output = run_gdb(
      server->port(), {"reverse-stepi", "info registers rip", "stepi", "info registers rip"});
  SCOPED_TRACE(output);
  // The message arrives as console output, then gdb reports the E reply and stays stopped.
  EXPECT_NE(
      output.find("drvm: reverse execution needs one vCPU\nwarning: Remote failure reply: E5f"),
      std::string::npos);
  EXPECT_EQ(target.reverse_resumes(),
            (std::vector<FakeTarget::ReverseCall>{{1, ThreadAction::kStep}}));
  EXPECT_NE(output.find("rip            0x10000"), std::string::npos);
  // The session goes on: a forward step still works.
  EXPECT_NE(output.find("rip            0x10001"), std::string::npos);
}

TEST_F(RealGdb, WithoutHistoryGdbDoesNotOfferReverseExecution) {
  const std::string output = run_gdb(server->port(), {"reverse-stepi", "info registers rip"});
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("Target remote does not support this command."), std::string::npos);
  EXPECT_TRUE(target.reverse_resumes().empty());
}

TEST_F(RealGdb, SecondGdbIsRefusedWithAMessage) {
  const int first = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server->port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(first, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string output = run_gdb(server->port(), {"info registers rip"});
  ::close(first);
  SCOPED_TRACE(output);
  EXPECT_NE(output.find("Remote failure reply: E.drvm: another gdb is already attached to this "
                        "guest; detach it first"),
            std::string::npos);
  EXPECT_EQ(target.attach_count(), 1);
}

}  // namespace
}  // namespace drvm::gdbstub::testing
