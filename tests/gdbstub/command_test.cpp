// Each command of the stub against the scripted fake target, through StubSession.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "gdbstub/hex.hpp"
#include "gdbstub/target_description.hpp"
#include "session_harness.hpp"

namespace drvm::gdbstub::testing {
namespace {

constexpr std::uint64_t kBase = FakeTarget::kMemoryBase;

class StubCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    harness.start();
    harness.request("qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+");
  }
  std::string request(std::string_view payload) { return harness.request(payload); }
  SessionHarness harness;
};

std::string hex_u64(std::uint64_t value) {
  std::uint8_t bytes[8];
  std::memcpy(bytes, &value, 8);
  return encode_hex_bytes(bytes);
}

TEST_F(StubCommands, QuestionMarkReportsTheAttachStop) {
  EXPECT_EQ(request("?"), "T05thread:1;");
}

TEST_F(StubCommands, QSupportedAnnouncesFeatures) {
  EXPECT_EQ(request("qSupported"),
            "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+;vContSupported+;"
            "QStartNoAckMode+");
}

TEST_F(StubCommands, AcksEachPacketAndRetransmitsOnNack) {
  const std::string output = harness.send_raw(frame_packet("qAttached"));
  EXPECT_EQ(output, "+" + frame_packet("1"));
  EXPECT_EQ(harness.send_raw("-"), frame_packet("1"));
  EXPECT_EQ(harness.send_raw("+"), "");
  EXPECT_EQ(harness.send_raw("-"), "");  // nothing left to resend once acked
}

TEST_F(StubCommands, BadChecksumIsNackedAndNotExecuted) {
  EXPECT_EQ(harness.send_raw("$D#00"), "-");
  EXPECT_EQ(harness.target.detach_count(), 0);
  EXPECT_FALSE(harness.session().finished());
}

TEST_F(StubCommands, NoAckModeStopsAcks) {
  EXPECT_EQ(harness.send_raw(frame_packet("QStartNoAckMode")), "+" + frame_packet("OK"));
  EXPECT_TRUE(harness.session().no_ack_mode());
  EXPECT_EQ(harness.send_raw("+" + frame_packet("qAttached")), frame_packet("1"));
  EXPECT_EQ(harness.send_raw("$qAttached#00"), "");
  EXPECT_EQ(harness.logs.back(), "dropped a packet with a bad checksum");
}

TEST_F(StubCommands, ReadsTheWholeTargetDescriptionInChunks) {
  for (std::string annex : {"target.xml", "64bit-core.xml", "64bit-segments.xml", "drvm-system.xml",
                            "drvm-debugregs.xml"}) {
    std::string contents;
    for (int guard = 0; guard < 1000; ++guard) {
      const std::string reply =
          request(fmt::format("qXfer:features:read:{}:{:x},{:x}", annex, contents.size(), 0x100));
      ASSERT_FALSE(reply.empty());
      ASSERT_TRUE(reply[0] == 'm' || reply[0] == 'l') << reply;
      contents += reply.substr(1);
      if (reply[0] == 'l') break;
    }
    EXPECT_EQ(contents, *target_description_annex(annex)) << annex;
  }
}

TEST_F(StubCommands, TargetDescriptionErrors) {
  EXPECT_EQ(request("qXfer:features:read:nosuch.xml:0,100"), "E00");
  EXPECT_EQ(request("qXfer:features:read:target.xml:100000,100"), "E16");
  EXPECT_EQ(request("qXfer:features:read:target.xml:zz"), "E16");
  const auto size = target_description_annex("target.xml")->size();
  EXPECT_EQ(request(fmt::format("qXfer:features:read:target.xml:{:x},10", size)), "l");
}

TEST_F(StubCommands, ReadsAllRegistersInGdbOrder) {
  const std::string reply = request("g");
  ASSERT_EQ(reply.size(), register_file_size() * 2);
  EXPECT_EQ(reply.substr(0, 16), hex_u64(0x1111111111111111));  // rax
  EXPECT_EQ(reply.substr(16 * 16, 16), hex_u64(kBase));         // rip after 16 GPRs
  EXPECT_EQ(reply.substr(17 * 16, 8), "02020000");              // eflags, 32-bit
  EXPECT_EQ(reply.substr(reply.size() - 16), hex_u64(0x401));   // dr7 is last
}

TEST_F(StubCommands, WritesAllRegisters) {
  std::string hex = request("g");
  hex.replace(0, 16, hex_u64(0xabcdef));
  EXPECT_EQ(request("G" + hex), "OK");
  EXPECT_EQ(harness.target.registers(1).rax, 0xabcdefu);
  EXPECT_EQ(request("G123"), "E16");
  EXPECT_EQ(request("G" + hex + "00"), "E16");
}

TEST_F(StubCommands, ShortRegisterWritesAreRefusedAndWriteNothing) {
  const std::string hex = request("g");
  const std::uint64_t rax = harness.target.registers(1).rax;
  std::string changed = hex;
  changed.replace(0, 16, hex_u64(0x1234));
  // Every even length short of the full file, including the one that stops before dr7.
  for (std::size_t size = 0; size < changed.size(); size += 16) {
    EXPECT_EQ(request("G" + changed.substr(0, size)), "E16") << size;
  }
  EXPECT_EQ(request("G" + changed.substr(0, changed.size() - 2)), "E16");
  EXPECT_EQ(harness.target.registers(1).rax, rax);
}

TEST_F(StubCommands, ReadsAndWritesSingleRegisters) {
  const auto layout = register_layout();
  std::size_t dr7 = 0, cs = 0;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    if (layout[i].name == "dr7") dr7 = i;
    if (layout[i].name == "cs") cs = i;
  }
  EXPECT_EQ(dr7, 54u);
  EXPECT_EQ(request(fmt::format("p{:x}", dr7)), hex_u64(0x401));
  EXPECT_EQ(request(fmt::format("p{:x}", cs)), "10000000");
  EXPECT_EQ(request(fmt::format("P{:x}={}", dr7, hex_u64(0x3))), "OK");
  EXPECT_EQ(harness.target.registers(1).dr7, 3u);
  EXPECT_EQ(request(fmt::format("P{:x}=0102", dr7)), "E16");
  EXPECT_EQ(request("p999"), "E16");
  EXPECT_EQ(request("Pzz=00"), "E16");
}

TEST_F(StubCommands, SelectsThreadForRegisters) {
  EXPECT_EQ(request("Hg2"), "OK");
  EXPECT_EQ(request("p0"), hex_u64(0x2222222222222222));
  EXPECT_EQ(request("Hg0"), "OK");
  EXPECT_EQ(request("p0"), hex_u64(0x1111111111111111));
  EXPECT_EQ(request("Hg3"), "E03");
  EXPECT_EQ(request("Hc-1"), "OK");
  EXPECT_EQ(request("Hx1"), "E16");
  EXPECT_EQ(request("H"), "E16");
}

// gdb records the thread of a stop reply as the stub's general thread and sends no Hg for it
// (remote.c record_currthread): after a stop on thread 2, `p` reads thread 2 even though Hg1 came
// before.
TEST_F(StubCommands, AStopSelectsTheStoppedThreadForRegisters) {
  EXPECT_EQ(request("Hg1"), "OK");
  EXPECT_EQ(request("p0"), hex_u64(0x1111111111111111));
  harness.target.script_stop(
      {StopEvent{StopReason::kTrap, 2, TrapCause::kWriteWatchpoint, 0x10020}});
  EXPECT_EQ(request("vCont;c"), "T05watch:10020;thread:2;");
  EXPECT_EQ(request("p0"), hex_u64(0x2222222222222222));
  EXPECT_EQ(request("Hg1"), "OK");  // an explicit selection holds until the next stop
  EXPECT_EQ(request("p0"), hex_u64(0x1111111111111111));
  EXPECT_EQ(request("?"), "T05watch:10020;thread:2;");
  EXPECT_EQ(request("p0"), hex_u64(0x2222222222222222));
}

TEST_F(StubCommands, ReadsMemoryWithErrorsForUnmappedPages) {
  EXPECT_EQ(request(fmt::format("m{:x},4", kBase + 0x10)), "10111213");
  EXPECT_EQ(request(fmt::format("m{:x},4", FakeTarget::kHoleBase)), "E0e");
  // A read running into the hole returns what precedes it.
  EXPECT_EQ(request(fmt::format("m{:x},8", FakeTarget::kHoleBase - 2)), "feff");
  EXPECT_EQ(request("m0,ffffffffffffffff"), "E0e");
  EXPECT_EQ(request("mzz,4"), "E16");
  EXPECT_EQ(request("m10000"), "E16");
}

TEST_F(StubCommands, ClampsHugeMemoryReadsToOnePacket) {
  const std::string reply = request(fmt::format("m{:x},100000", kBase));
  EXPECT_GT(reply.size(), 0u);
  EXPECT_LE(reply.size() + 4, 0x4000u);
}

TEST_F(StubCommands, WritesMemoryInHex) {
  EXPECT_EQ(request(fmt::format("M{:x},2:abcd", kBase)), "OK");
  EXPECT_EQ(harness.target.memory_byte(kBase), 0xab);
  EXPECT_EQ(harness.target.memory_byte(kBase + 1), 0xcd);
  EXPECT_EQ(request(fmt::format("M{:x},2:ab", kBase)), "E16");
  EXPECT_EQ(request(fmt::format("M{:x},1:zz", kBase)), "E16");
  EXPECT_EQ(request(fmt::format("M{:x},2:0102", FakeTarget::kHoleBase - 1)), "E0e");
}

TEST_F(StubCommands, WritesBinaryMemory) {
  std::string payload = fmt::format("X{:x},5:", kBase + 8);
  const std::uint8_t data[] = {'#', '$', '}', '*', 0x03};
  append_escaped_binary(payload, data);
  EXPECT_EQ(request(payload), "OK");
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(harness.target.memory_byte(kBase + 8 + i), data[i]);
  EXPECT_EQ(request(fmt::format("X{:x},0:", kBase)), "OK");
  EXPECT_EQ(request(fmt::format("X{:x},3:ab", kBase)), "E16");
  EXPECT_EQ(request(fmt::format("X{:x},1:a", FakeTarget::kHoleBase)), "E0e");
  EXPECT_EQ(request("X1,1"), "E16");
}

TEST_F(StubCommands, InsertsAndRemovesEveryBreakpointKind) {
  for (int kind = 0; kind <= 4; ++kind) {
    EXPECT_EQ(request(fmt::format("Z{},{:x},{}", kind, kBase + 0x40 * kind, kind < 2 ? 1 : 4)),
              "OK");
  }
  const auto table = harness.target.breakpoints();
  ASSERT_EQ(table.size(), 5u);
  EXPECT_EQ(table[2], (Breakpoint{BreakpointKind::kWrite, kBase + 0x80, 4}));
  EXPECT_EQ(table[4], (Breakpoint{BreakpointKind::kAccess, kBase + 0x100, 4}));
  EXPECT_EQ(request(fmt::format("z3,{:x},4", kBase + 0xc0)), "OK");
  EXPECT_EQ(harness.target.breakpoints().size(), 4u);
  EXPECT_EQ(request(fmt::format("z3,{:x},4", kBase + 0xc0)), "E02");
}

TEST_F(StubCommands, BreakpointRefusalIsAnErrorWithALoggedMessage) {
  EXPECT_EQ(request(fmt::format("Z2,{:x},8", FakeTarget::kRefusedAddress)), "E1c");
  EXPECT_NE(harness.logs.back().find("no room for it"), std::string::npos);
  EXPECT_EQ(request("Z9,1000,1"), "");
  EXPECT_EQ(request("Z1,zz,1"), "E16");
}

TEST_F(StubCommands, ContinueRunsAllThreadsUntilCtrlC) {
  EXPECT_EQ(harness.exchange("c").size(), 0u);
  EXPECT_TRUE(harness.session().target_running());
  ASSERT_EQ(harness.target.resumes().size(), 1u);
  EXPECT_EQ(harness.target.resumes()[0].actions,
            (std::vector{ThreadAction::kContinue, ThreadAction::kContinue}));
  EXPECT_EQ(SessionHarness::packets(harness.send_raw("\x03")),
            std::vector<std::string>{"T02thread:1;"});
  EXPECT_EQ(harness.target.interrupt_count(), 1);
}

TEST_F(StubCommands, CtrlCWhileStoppedDoesNothing) {
  EXPECT_EQ(harness.send_raw("\x03"), "");
  EXPECT_EQ(harness.target.interrupt_count(), 0);
}

TEST_F(StubCommands, StepMovesOnlyTheSelectedThread) {
  EXPECT_EQ(request("Hc2"), "OK");
  EXPECT_EQ(request("s"), "T05thread:2;");
  EXPECT_EQ(harness.target.resumes().back().actions,
            (std::vector{ThreadAction::kStayStopped, ThreadAction::kStep}));
  EXPECT_EQ(harness.target.registers(2).rip, kBase + 0x101);
}

TEST_F(StubCommands, ContinueAndStepAtAnAddressSetRip) {
  EXPECT_EQ(request(fmt::format("s{:x}", kBase + 0x50)), "T05thread:1;");
  EXPECT_EQ(harness.target.registers(1).rip, kBase + 0x51);
  EXPECT_EQ(request(fmt::format("S05;{:x}", kBase + 0x60)), "T05thread:1;");
  EXPECT_EQ(harness.target.registers(1).rip, kBase + 0x61);
  harness.target.script_stop({StopEvent{StopReason::kTrap, 1}});
  EXPECT_EQ(request("C0b"), "T05thread:1;");
  EXPECT_EQ(request("Cxx"), "E16");
  EXPECT_EQ(request("czz"), "E16");
}

TEST_F(StubCommands, VContAppliesLeftmostActionPerThread) {
  EXPECT_EQ(request("vCont?"), "vCont;c;C;s;S");
  EXPECT_EQ(request("vCont;s:2;c"), "T05thread:2;");
  EXPECT_EQ(harness.target.resumes().back().actions,
            (std::vector{ThreadAction::kContinue, ThreadAction::kStep}));
  harness.target.script_stop({StopEvent{StopReason::kTrap, 1}});
  EXPECT_EQ(request("vCont;C05:1"), "T05thread:1;");
  EXPECT_EQ(harness.target.resumes().back().actions,
            (std::vector{ThreadAction::kContinue, ThreadAction::kStayStopped}));
  EXPECT_EQ(request("vCont;S05:p1.1;c:2"), "T05thread:1;");
}

TEST_F(StubCommands, VContRejectsBadActions) {
  EXPECT_EQ(request("vCont;t"), "E16");
  EXPECT_EQ(request("vCont;c:9"), "E03");
  EXPECT_EQ(request("vCont;"), "E16");
  EXPECT_EQ(request("vCont;cx"), "E16");
  EXPECT_EQ(request("vCont;c:zz"), "E16");
  EXPECT_EQ(harness.target.resumes().size(), 0u);
}

TEST_F(StubCommands, StopRepliesCarryTheTrapCause) {
  const std::pair<TrapCause, std::string> cases[] = {
      {TrapCause::kWriteWatchpoint, "T05watch:10020;thread:2;"},
      {TrapCause::kReadWatchpoint, "T05rwatch:10020;thread:2;"},
      {TrapCause::kAccessWatchpoint, "T05awatch:10020;thread:2;"},
      {TrapCause::kHardwareBreakpoint, "T05hwbreak:;thread:2;"},
      {TrapCause::kSoftwareBreakpoint, "T05swbreak:;thread:2;"},
  };
  for (const auto& [cause, expected] : cases) {
    harness.target.script_stop({StopEvent{StopReason::kTrap, 2, cause, 0x10020}});
    EXPECT_EQ(request("vCont;c"), expected);
    EXPECT_EQ(request("qC"), "QC2");
  }
}

TEST(StubStopReplies, OmitBreakFieldsGdbDidNotAnnounce) {
  SessionHarness harness;
  harness.start();
  harness.request("qSupported:multiprocess+");
  harness.target.script_stop({StopEvent{StopReason::kTrap, 1, TrapCause::kSoftwareBreakpoint}});
  EXPECT_EQ(harness.request("c"), "T05thread:1;");
}

TEST_F(StubCommands, WatchpointStopShowsTheGuestWrite) {
  EXPECT_EQ(request(fmt::format("Z2,{:x},4", kBase + 0x20)), "OK");
  harness.target.script_stop(
      {StopEvent{StopReason::kTrap, 1, TrapCause::kWriteWatchpoint, kBase + 0x20},
       kBase + 0x20,
       {0x78, 0x56, 0x34, 0x12},
       3});
  EXPECT_EQ(request("vCont;c"), "T05watch:10020;thread:1;");
  EXPECT_EQ(request(fmt::format("m{:x},4", kBase + 0x20)), "78563412");
}

TEST_F(StubCommands, ExitAndTerminationReplies) {
  harness.target.script_stop({StopEvent{StopReason::kExited, 1, TrapCause::kUnspecified, 0, 3}});
  EXPECT_EQ(request("c"), "W03");
  EXPECT_EQ(request("?"), "W03");
  EXPECT_EQ(request("c"), "W03");  // an exited guest cannot run again
  EXPECT_EQ(harness.target.resumes().size(), 1u);
}

TEST_F(StubCommands, TerminationReply) {
  harness.target.script_stop(
      {StopEvent{StopReason::kTerminated, 1, TrapCause::kUnspecified, 0, 0, 11}});
  EXPECT_EQ(request("vCont;c"), "X0b");
}

TEST_F(StubCommands, ThreadQueries) {
  EXPECT_EQ(request("qC"), "QC1");
  EXPECT_EQ(request("qfThreadInfo"), "m1,2");
  EXPECT_EQ(request("qsThreadInfo"), "l");
  EXPECT_EQ(request("qThreadExtraInfo,2"), encode_hex_text("vCPU 1"));
  EXPECT_EQ(request("qThreadExtraInfo,5"), "E03");
  EXPECT_EQ(request("T2"), "OK");
  EXPECT_EQ(request("T3"), "E03");
  EXPECT_EQ(request("T0"), "E03");
  EXPECT_EQ(request("qAttached"), "1");
}

TEST(StubThreadList, ManyThreadsAreListedInSeveralReplies) {
  SessionHarness harness({}, 100);
  harness.start();
  EXPECT_EQ(harness.request("qfThreadInfo").substr(0, 4), "m1,2");
  EXPECT_EQ(harness.request("qsThreadInfo"),
            "m41,42,43,44,45,46,47,48,49,4a,4b,4c,4d,4e,4f,50,51,52,53,54,55,56,57,58,59,5a,5b,"
            "5c,5d,5e,5f,60,61,62,63,64");
  EXPECT_EQ(harness.request("qsThreadInfo"), "l");
}

TEST_F(StubCommands, MonitorOutputGoesOutAsConsolePackets) {
  const auto replies = harness.exchange("qRcmd," + encode_hex_text("dr"));
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0], "O" + encode_hex_text("0 breakpoints\n"));
  EXPECT_EQ(replies[1], "OK");
  EXPECT_EQ(request("qRcmd,zz"), "E16");
}

TEST_F(StubCommands, LongMonitorOutputIsSplitToFitThePacketSize) {
  const auto replies = harness.exchange("qRcmd," + encode_hex_text("big"));
  ASSERT_GT(replies.size(), 2u);
  std::string text;
  for (std::size_t i = 0; i + 1 < replies.size(); ++i) {
    ASSERT_EQ(replies[i][0], 'O');
    EXPECT_LE(replies[i].size() + 4, 0x4000u);
    const auto bytes = decode_hex_bytes(std::string_view(replies[i]).substr(1));
    ASSERT_TRUE(bytes);
    text.append(bytes->begin(), bytes->end());
  }
  EXPECT_EQ(text, std::string(40000, 'x') + "\n");
  EXPECT_EQ(replies.back(), "OK");
}

TEST_F(StubCommands, UnknownPacketsGetAnEmptyReply) {
  for (std::string packet : {"qOffsets", "vMustReplyEmpty", "!", "qTStatus", "vKill;1", "R00", "b",
                             "i", "qSymbol::", "Qfoo", "vRun;"}) {
    EXPECT_EQ(request(packet), "") << packet;
  }
}

TEST_F(StubCommands, OversizedAndMalformedPacketsGetErrors) {
  const std::string big = "m" + std::string(0x5000, '0') + ",4";
  EXPECT_EQ(harness.send_raw(frame_packet(big)), "+" + frame_packet("E07"));
  const std::string raw = "m*";
  EXPECT_EQ(harness.send_raw(fmt::format("${}#{:02x}", raw, packet_checksum(raw))),
            "+" + frame_packet("E16"));
  EXPECT_EQ(request("?"), "T05thread:1;");
}

TEST_F(StubCommands, PacketsSentWhileRunningAreAnsweredAfterTheStop) {
  EXPECT_EQ(harness.exchange("c").size(), 0u);
  EXPECT_EQ(harness.send_raw(frame_packet("qC") + frame_packet("qAttached")), "++");
  EXPECT_EQ(SessionHarness::packets(harness.send_raw("\x03")),
            (std::vector<std::string>{"T02thread:1;", "QC1", "1"}));
}

TEST(StubQueue, QueueIsBounded) {
  SessionHarness harness(SessionOptions{0x4000, 2});
  harness.start();
  harness.exchange("c");
  harness.send_raw(frame_packet("qC") + frame_packet("qC") + frame_packet("qC"));
  EXPECT_EQ(harness.logs.back(), "dropped a packet sent while the target runs: too many queued");
  EXPECT_EQ(SessionHarness::packets(harness.send_raw("\x03")).size(), 3u);
}

TEST_F(StubCommands, DetachLetsTheTargetRunAndEndsTheSession) {
  EXPECT_EQ(request(fmt::format("Z1,{:x},1", kBase)), "OK");
  EXPECT_EQ(request("D"), "OK");
  EXPECT_EQ(harness.target.detach_count(), 1);
  EXPECT_TRUE(harness.target.breakpoints().empty());
  EXPECT_TRUE(harness.session().finished());
  harness.session().disconnect();
  EXPECT_EQ(harness.target.detach_count(), 1);
  EXPECT_EQ(harness.target.disconnect_count(), 0);
  EXPECT_EQ(harness.send_raw(frame_packet("g")), "");
}

TEST_F(StubCommands, KillEndsTheSessionWithoutReply) {
  EXPECT_EQ(harness.exchange("k").size(), 0u);
  EXPECT_EQ(harness.target.kill_count(), 1);
  EXPECT_TRUE(harness.session().finished());
}

TEST_F(StubCommands, DisconnectWhileRunningLeavesTheRunStateToTheTarget) {
  harness.exchange("c");
  harness.session().disconnect();
  EXPECT_EQ(harness.target.disconnect_count(), 1);
  EXPECT_EQ(harness.target.detach_count(), 0);
  EXPECT_FALSE(harness.target.running());  // the pending stop handler is dropped
}

TEST_F(StubCommands, DisconnectWhileStoppedKeepsTheTargetStopped) {
  EXPECT_EQ(request(fmt::format("Z1,{:x},1", kBase)), "OK");
  harness.session().disconnect();
  EXPECT_EQ(harness.target.disconnect_count(), 1);
  EXPECT_EQ(harness.target.detach_count(), 0);
  EXPECT_TRUE(harness.target.resumes().empty());
  EXPECT_TRUE(harness.target.breakpoints().empty());
}

// --- Reverse execution (bc/bs) ---

class StubReverse : public StubCommands {
 protected:
  void SetUp() override {
    harness.target.set_can_reverse(true);
    StubCommands::SetUp();
  }
  using Call = FakeTarget::ReverseCall;
  std::vector<Call> calls() const { return harness.target.reverse_resumes(); }
};

TEST_F(StubReverse, QSupportedAnnouncesReverseExecutionOnlyWhenTheTargetCan) {
  EXPECT_EQ(request("qSupported:swbreak+"),
            "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+;vContSupported+;"
            "QStartNoAckMode+;ReverseContinue+;ReverseStep+");
  harness.target.set_can_reverse(false);
  EXPECT_EQ(request("qSupported:swbreak+").find("Reverse"), std::string::npos);
}

TEST_F(StubReverse, BsStepsTheStoppedThreadBackwards) {
  EXPECT_EQ(request("bs"), "T05thread:1;");
  EXPECT_EQ(calls(), (std::vector{Call{1, ThreadAction::kStep}}));
  EXPECT_EQ(harness.target.registers(1).rip, kBase - 1);
  EXPECT_TRUE(harness.target.resumes().empty());  // never a forward resume
}

TEST_F(StubReverse, BcAndBsGoToTheHcThread) {
  EXPECT_EQ(request("Hc2"), "OK");
  EXPECT_EQ(request("bs"), "T05thread:2;");
  harness.target.script_reverse(
      {StopEvent{StopReason::kTrap, 2, TrapCause::kSoftwareBreakpoint}, kBase + 0x108});
  EXPECT_EQ(request("bc"), "T05swbreak:;thread:2;");
  EXPECT_EQ(calls(), (std::vector{Call{2, ThreadAction::kStep}, Call{2, ThreadAction::kContinue}}));
  EXPECT_EQ(harness.target.registers(2).rip, kBase + 0x108);
  // Hc0 and Hc-1 mean the stopped thread, now 2; after a stop of thread 1 it is thread 1.
  EXPECT_EQ(request("Hc0"), "OK");
  EXPECT_EQ(request("bs"), "T05thread:2;");
  harness.target.script_reverse(
      {StopEvent{StopReason::kTrap, 1, TrapCause::kWriteWatchpoint, kBase + 0x20}});
  EXPECT_EQ(request("bc"), "T05watch:10020;thread:1;");
  EXPECT_EQ(request("Hc-1"), "OK");
  EXPECT_EQ(request("bs"), "T05thread:1;");
  EXPECT_EQ(calls().back(), (Call{1, ThreadAction::kStep}));
}

TEST_F(StubReverse, MalformedReversePacketsAreUnknownAndDoNothing) {
  for (std::string packet : {"bcX", "bs1", "bc;c", "b", "bx", "bS", "bC"}) {
    EXPECT_EQ(request(packet), "") << packet;
  }
  EXPECT_TRUE(calls().empty());
  EXPECT_FALSE(harness.session().target_running());
}

TEST_F(StubReverse, HistoryStartIsAReplaylogBeginStop) {
  StopEvent start{StopReason::kTrap, 1};
  start.history_start = true;
  harness.target.script_reverse({start, kBase - 0x40});
  EXPECT_EQ(request("bc"), "T05replaylog:begin;thread:1;");
  EXPECT_EQ(harness.target.registers(1).rip, kBase - 0x40);
  // `?` says where the target is; running out of history is not repeated to a new gdb.
  EXPECT_EQ(request("?"), "T05thread:1;");
  StopEvent interrupted_there{StopReason::kInterrupted, 2};
  interrupted_there.history_start = true;
  harness.target.script_reverse({interrupted_there});
  EXPECT_EQ(request("bc"), "T02replaylog:begin;thread:2;");
}

TEST_F(StubReverse, ARefusalShowsTheMessageAndAnswersTheCode) {
  harness.target.script_reverse(
      {StopEvent{}, std::nullopt, Status::failure(0x5f, "reverse execution needs one vCPU")});
  EXPECT_EQ(harness.exchange("bc"),
            (std::vector<std::string>{"O" + encode_hex_text("reverse execution needs one vCPU\n"),
                                      "E5f"}));
  EXPECT_EQ(harness.logs.back(), "reverse continue (bc) refused: reverse execution needs one vCPU");
  // Still stopped where it was: packets are answered at once and the next bs runs.
  EXPECT_FALSE(harness.session().target_running());
  EXPECT_EQ(request("qC"), "QC1");
  EXPECT_EQ(harness.target.registers(1).rip, kBase);
  EXPECT_EQ(request("bs"), "T05thread:1;");
  // The refused run's handler was never called; one made for it later would be stale anyway.
  EXPECT_EQ(calls().size(), 2u);
}

TEST(StubReverseUnsupported, BcAndBsReachTheDefaultRefusal) {
  SessionHarness harness;  // a target without history: DebugTarget's default reverse_resume
  harness.start();
  EXPECT_EQ(harness.request("qSupported:swbreak+").find("Reverse"), std::string::npos);
  const std::vector<std::string> expected{
      "O" + encode_hex_text("reverse execution is not supported by this target\n"),
      fmt::format("E{:02x}", DebugTarget::kReverseUnsupportedCode)};
  EXPECT_EQ(harness.exchange("bc"), expected);
  EXPECT_EQ(harness.exchange("bs"), expected);
  EXPECT_EQ(harness.logs.back(),
            "reverse step (bs) refused: reverse execution is not supported by this target");
  EXPECT_EQ(harness.target.reverse_resumes().size(), 2u);
  EXPECT_EQ(harness.request("?"), "T05thread:1;");
}

TEST_F(StubReverse, CtrlCDuringBcInterruptsLikeDuringC) {
  EXPECT_EQ(harness.exchange("bc").size(), 0u);  // runs backwards until stopped
  EXPECT_TRUE(harness.session().target_running());
  EXPECT_TRUE(harness.target.running());
  // Only 0x03 acts now; other packets wait for the one stop reply.
  EXPECT_EQ(harness.send_raw(frame_packet("qC")), "+");
  EXPECT_EQ(harness.target.interrupt_count(), 0);
  EXPECT_EQ(SessionHarness::packets(harness.send_raw("\x03")),
            (std::vector<std::string>{"T02thread:1;", "QC1"}));
  EXPECT_EQ(harness.target.interrupt_count(), 1);
  EXPECT_FALSE(harness.session().target_running());
}

TEST_F(StubReverse, AResumePacketSentDuringBcWaitsForItsStop) {
  harness.exchange("bc");
  // gdb never does this, but a second bc must not start a second run before the first stops.
  EXPECT_EQ(harness.send_raw(frame_packet("bs")), "+");
  EXPECT_EQ(harness.target.reverse_resumes().size(), 1u);
  EXPECT_EQ(SessionHarness::packets(harness.send_raw("\x03")),
            (std::vector<std::string>{"T02thread:1;", "T05thread:1;"}));
  EXPECT_EQ(harness.target.reverse_resumes().size(), 2u);
}

TEST_F(StubReverse, AnExitedGuestRepeatsItsExit) {
  harness.target.script_stop({StopEvent{StopReason::kExited, 1, TrapCause::kUnspecified, 0, 3}});
  EXPECT_EQ(request("c"), "W03");
  EXPECT_EQ(request("bc"), "W03");
  EXPECT_EQ(request("bs"), "W03");
  EXPECT_TRUE(calls().empty());
}

TEST_F(StubReverse, DisconnectDuringBcDropsItsStop) {
  harness.exchange("bc");
  const StopHandler run = harness.target.last_handler();
  harness.session().disconnect();
  EXPECT_EQ(harness.target.disconnect_count(), 1);
  EXPECT_FALSE(harness.target.running());
  run(StopEvent{StopReason::kTrap, 1});
  EXPECT_EQ(harness.send_raw(""), "");
}

TEST(StubAttach, AttachingToARunningGuestWaitsForItsStop) {
  SessionHarness harness;
  harness.target.set_attach_event(StopEvent{StopReason::kInterrupted, 2});
  harness.target.set_deliver_from_thread(true);
  harness.session().start();
  harness.session().receive(frame_packet("?"));
  // The stop arrives from another thread; wait for the posted task.
  std::string output;
  for (int i = 0; i < 1000 && output.find('$') == std::string::npos; ++i) {
    harness.run_tasks();
    output += harness.session().take_output();
    if (output.find('$') == std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(SessionHarness::packets(output), std::vector<std::string>{"T02thread:2;"});
}

// A fault held for inspection: a signal stop gdb can read registers at; resuming goes to the
// target (which ends the run and answers with W/X), unlike an exit that is only repeated.
TEST(StubAttach, AFaultIsASignalStopAndResumingItReachesTheTarget) {
  SessionHarness harness;
  StopEvent fault{StopReason::kSignal, 2};
  fault.signal = 11;  // SIGSEGV: a triple fault
  harness.target.set_attach_event(fault);
  harness.start();
  EXPECT_EQ(harness.request("?"), "T0bthread:2;");
  EXPECT_EQ(harness.request("qC"), "QC2");
  EXPECT_EQ(harness.request("p10").size(), 16u);  // rip of thread 2
  harness.exchange("c");
  EXPECT_EQ(harness.target.resumes().size(), 1u);
}

TEST(StubAttach, StaleStopHandlersAreIgnored) {
  SessionHarness harness;
  harness.start();
  harness.exchange("c");
  const StopHandler first_run = harness.target.last_handler();
  EXPECT_EQ(SessionHarness::packets(harness.send_raw("\x03")),
            std::vector<std::string>{"T02thread:1;"});
  // A second report for a run that already stopped must not produce a second stop reply.
  first_run(StopEvent{StopReason::kTrap, 2});
  EXPECT_EQ(harness.send_raw(""), "");
  EXPECT_EQ(harness.request("?"), "T02thread:1;");
  // Nor may a report for a run abandoned by detaching.
  harness.exchange("c");
  const StopHandler second_run = harness.target.last_handler();
  harness.session().disconnect();
  second_run(StopEvent{StopReason::kTrap, 2});
  EXPECT_EQ(harness.send_raw(""), "");
}

}  // namespace
}  // namespace drvm::gdbstub::testing
