// The real gdb against `drvm run IMAGE --gdb 0`: breakpoints, watchpoints, stepping, registers,
// memory, Ctrl-C, attach to a running guest, detach, kill, monitor commands, and the guest's own
// debug registers working while gdb holds watchpoints. The guest is gdbwork.elf
// (guestfw/images/gdbwork_main.c): its variables and loops make every hit predictable.
//
// Watchpoints are set once the guest reached guest_main (long mode, segments loaded), as a user
// would: see docs/gdb.md, Limits, for watchpoints on the page that holds the guest's GDT.

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// GCC 12 reports false maybe-uninitialized warnings inside <regex> at -O2 with the sanitizers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <string>
#include <vector>

#include "elf_symbols.hpp"
#include "gdb_session.hpp"
#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

// Commands that run the guest to guest_main and drop that breakpoint.
std::vector<std::string> to_guest_main(std::vector<std::string> then) {
  std::vector<std::string> commands{"break guest_main", "continue", "delete"};
  commands.insert(commands.end(), then.begin(), then.end());
  return commands;
}

constexpr const char* kExitedWith3 = "[Inferior 1 (Remote target) exited with code 03]";

TEST(GdbE2e, BreaksOnASymbolStepsOverItAndContinuesToTheExit) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands = {"break gdbwork_marker", "continue", "x/2i $pc", "stepi",
                     "info registers rip",   "continue", "delete",   "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(matches(result.gdb_output, R"(Breakpoint 1 at 0x[0-9a-f]+: file .*gdbwork_main.c)"));
  // Continuing from the breakpoint steps over it and stops at the next call (round 2).
  EXPECT_TRUE(matches(result.gdb_output, R"(Breakpoint 1, gdbwork_marker \(round=[^)]*1\))"));
  EXPECT_TRUE(matches(result.gdb_output, R"(Breakpoint 1, gdbwork_marker \(round=[^)]*2\))"));
  // stepi executed exactly the first instruction: rip is the second one x/2i listed.
  std::smatch second;
  ASSERT_TRUE(std::regex_search(
      result.gdb_output, second,
      std::regex(R"(=> 0x[0-9a-f]+ <gdbwork_marker>:[^\n]*\n\s+(0x[0-9a-f]+) <gdbwork_marker\+)")));
  EXPECT_TRUE(matches(result.gdb_output, "rip +" + second[1].str() + " "));
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
  EXPECT_TRUE(contains(result.serial, "gdbwork: done, exit code 3"));
}

// The instruction after a watchpoint stop stores to the watched page (an emulated access under
// the page engines): stepi must still run exactly that one instruction.
TEST(GdbE2e, StepiOverAnAccessToAWatchedPageRunsOneInstruction) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands = {"break gdbwork_reads",
                     "continue",
                     "delete",
                     "rwatch read_me",
                     "continue",
                     "x/2i $pc",
                     "stepi",
                     "info registers rip",
                     "delete",
                     "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "Hardware read watchpoint 2: read_me\n\nValue = 4660\n"));
  std::smatch second;
  ASSERT_TRUE(std::regex_search(
      result.gdb_output, second,
      std::regex(
          R"(=> 0x[0-9a-f]+ <gdbwork_reads\+[0-9]+>:[^\n]*\n\s+(0x[0-9a-f]+) <gdbwork_reads\+)")));
  EXPECT_TRUE(matches(result.gdb_output, "rip +" + second[1].str() + " "));
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
}

TEST(GdbE2e, HardwareBreakpointStopsEveryTime) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands =
      to_guest_main({"hbreak gdbwork_access", "continue", "continue", "delete", "continue"});
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "Hardware assisted breakpoint 2 at"));
  EXPECT_EQ(count(result.gdb_output, "Breakpoint 2, gdbwork_access ()"), 2u);
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

TEST(GdbE2e, SixWatchpointsAtOnceReportOldAndNewValues) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  std::vector<std::string> commands;
  for (int i = 0; i < 6; ++i) commands.push_back(fmt::format("watch watch_{}", i));
  for (int i = 0; i < 7; ++i) commands.push_back("continue");
  commands.insert(commands.end(), {"delete", "continue"});
  script.commands = to_guest_main(commands);
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  for (int i = 0; i < 6; ++i) {
    // Round 1 writes watch_i = 10 + i.
    EXPECT_TRUE(contains(result.gdb_output,
                         fmt::format("Hardware watchpoint {}: watch_{}\n\nOld value = 0\nNew "
                                     "value = {}\n",
                                     i + 2, i, 10 + i)))
        << "watch_" << i;
  }
  // Round 2 writes watch_0 = 20.
  EXPECT_TRUE(contains(result.gdb_output,
                       "Hardware watchpoint 2: watch_0\n\nOld value = 10\nNew value = 20\n"));
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

TEST(GdbE2e, ReadAndAccessWatchpointsStopOnReadsAndWrites) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands = to_guest_main({"rwatch read_me", "awatch access_me", "continue", "continue",
                                   "continue", "continue", "delete", "continue"});
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "Hardware read watchpoint 2: read_me\n\nValue = 4660\n"));
  // access_me = access_me + 1: the read, then the write.
  EXPECT_TRUE(contains(result.gdb_output,
                       "Hardware access (read/write) watchpoint 3: access_me\n\nValue = 100\n"));
  EXPECT_TRUE(contains(result.gdb_output,
                       "Hardware access (read/write) watchpoint 3: access_me\n\nOld value = "
                       "100\nNew value = 101\n"));
  EXPECT_EQ(count(result.gdb_output, "Hardware read watchpoint 2: read_me"), 3u);  // 1 + 2 hits
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
}

TEST(GdbE2e, RegistersMemoryAndSetVar) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands = {"break gdbwork_reads",
                     "continue",
                     "info registers rip eflags",
                     "info registers cs ss ds es fs gs fs_base gs_base k_gs_base",
                     "info registers cr0 cr3 cr4 efer",
                     "info registers dr7",
                     "set $dr0 = (long)0x4000",
                     "info registers dr0",
                     "x/2xg &read_me",
                     "x/x 0xdead00000000",
                     "set var read_me = 0x5678",
                     "x/1xg &read_me",
                     "set var exit_code = 5",
                     "set $rax = 0x1122334455667788",
                     "info registers rax",
                     "delete",
                     "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  EXPECT_TRUE(matches(out, R"(rip +0x[0-9a-f]+ +0x[0-9a-f]+ <gdbwork_reads>)"));
  EXPECT_TRUE(matches(out, R"(cs +0x8 +8)"));
  EXPECT_TRUE(matches(out, R"(ss +0x10 +16)"));
  EXPECT_TRUE(matches(out, R"(fs_base +0x0 +0)"));
  EXPECT_TRUE(matches(out, R"(k_gs_base +0x0 +0)"));
  EXPECT_TRUE(matches(out, R"(cr0 +0x80000011 +\[ PE ET PG \])"));
  EXPECT_TRUE(matches(out, R"(cr4 +0x[0-9a-f]+ +\[[^\]]*PAE)"));
  EXPECT_TRUE(matches(out, R"(efer +0x500 +\[ LME LMA \])"));
  // The guest's own DR7 (its reset value), not the slots drvm uses for gdb's breakpoint.
  EXPECT_TRUE(matches(out, R"(dr7 +0x400 )"));
  EXPECT_TRUE(matches(out, R"(dr0 +0x4000 )"));
  EXPECT_TRUE(matches(out, R"(<read_me>:\s+0x0000000000001234\s+0x0000000000000064)"));
  EXPECT_TRUE(contains(out, "Cannot access memory at address 0xdead00000000"));
  EXPECT_TRUE(matches(out, R"(<read_me>:\s+0x0000000000005678)"));
  EXPECT_TRUE(matches(out, R"(rax +0x1122334455667788 )"));
  EXPECT_TRUE(contains(out, "[Inferior 1 (Remote target) exited with code 05]"));
  EXPECT_EQ(result.drvm_status, exit_port_status(5));
}

TEST(GdbE2e, CtrlCInterruptsASpinningGuest) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.drvm_args = {"--cmdline", "spin"};
  script.commands = {"continue", "info registers rip", "set var spin_release = 1", "continue"};
  script.interrupt_when_serial_has = "gdbwork: spinning";
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(result.interrupted);
  EXPECT_TRUE(contains(result.gdb_output, "Program received signal SIGINT, Interrupt."));
  EXPECT_TRUE(matches(result.gdb_output, R"(rip +0x[0-9a-f]+ +0x[0-9a-f]+ <gdbwork_spin\+)"));
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

TEST(GdbE2e, AttachingWithNoWaitStopsTheRunningGuest) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.drvm_args = {"--cmdline", "spin", "--gdb-no-wait"};
  script.attach_when_serial_has = "gdbwork: spinning";
  script.commands = {"info registers rip", "set var spin_release = 1", "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(matches(result.gdb_output, R"(rip +0x[0-9a-f]+ +0x[0-9a-f]+ <gdbwork_spin\+)"));
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

TEST(GdbE2e, DetachRemovesBreakpointsAndTheGuestRunsToItsExit) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands =
      to_guest_main({"break gdbwork_writes", "watch watch_2", "continue", "continue", "detach"});
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "Breakpoint 2, gdbwork_writes"));
  EXPECT_TRUE(contains(result.gdb_output, "Hardware watchpoint 3: watch_2"));
  EXPECT_TRUE(contains(result.gdb_output, "[Inferior 1 (Remote target) detached]"));
  // Round 2 would hit both again: nothing stopped the guest after the detach.
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
  EXPECT_TRUE(contains(result.serial, "gdbwork: done, exit code 3"));
}

TEST(GdbE2e, KillEndsTheRunWithStatus12) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands = {"break gdbwork_writes", "continue", "kill"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "[Inferior 1 (Remote target) killed]"));
  EXPECT_EQ(result.drvm_status, 12);
  EXPECT_FALSE(contains(result.serial, "gdbwork: done"));
  EXPECT_TRUE(contains(result.drvm_log, "drvm: gdb: killed the guest (gdb kill)"));
}

TEST(GdbE2e, MonitorCommandsShowSlotsEventsAndTheProbe) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  // always-inserted: gdb inserts breakpoints at once, so `monitor dr` sees them while stopped
  // (pending), and keeps them inserted at the stop (armed, with their engines). The guest's own
  // DR0 (a write watch on read_me, which the guest only reads) shows its engine the same way.
  script.commands = to_guest_main(
      {"set breakpoint always-inserted on", "watch watch_1", "rwatch read_me",
       "hbreak gdbwork_access", "watch *(char(*)[16])&watch_2", "set $dr0 = (long)&read_me",
       "set $dr7 = (long)0x90401", "monitor dr", "continue", "monitor dr", "monitor events",
       "monitor probe", "monitor nonsense", "delete", "continue"});
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  const std::string engine = "(hardware|int3|read-only page|unmapped page|single-step)";
  EXPECT_TRUE(contains(out, "vCPU 0 (thread 1):"));
  EXPECT_TRUE(matches(out, R"(guest +dr0 +0x[0-9a-f]+ +write +8 +pending \(armed when)"));
  EXPECT_TRUE(matches(out, R"(guest +dr0 +0x[0-9a-f]+ +write +8 +)" + engine));
  EXPECT_TRUE(matches(out, R"(guest +dr1 +0x0000000000000000 +execute +1 +disabled)"));
  EXPECT_TRUE(matches(out, R"(gdb +Z2 watch +0x[0-9a-f]+ +write +8 +)" + engine));
  EXPECT_TRUE(matches(out, R"(gdb +Z3 rwatch +0x[0-9a-f]+ +read +8 +)" + engine));
  EXPECT_TRUE(matches(out, R"(gdb +Z1 hbreak +0x[0-9a-f]+ +execute +1 +)" + engine));
  // Inserted while stopped: armed when the vCPU runs. A 16-byte watch is two 8-byte slots.
  EXPECT_EQ(count(out, "pending (armed when the vCPU runs)"), 6u);
  EXPECT_EQ(count(out, "gdb     Z2 watch"), 6u);
  EXPECT_TRUE(contains(out, "gdb: 4 breakpoints and watchpoints, 5 events"));
  EXPECT_TRUE(matches(out, R"(Z2 watch +0x[0-9a-f]+ len 8 +hits 1)"));
  EXPECT_TRUE(matches(out, R"(vCPU 0: [0-9]+ VM exits)"));
  EXPECT_TRUE(contains(out, "kvm      module"));
  EXPECT_TRUE(contains(out, "unknown monitor command 'nonsense'"));
  EXPECT_TRUE(contains(out, kExitedWith3));
}

TEST(GdbE2e, DrtestPassesWhileGdbHoldsWatchpoints) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.image = "drtest";
  // Six watchpoints and a hardware breakpoint far from anything drtest touches: they take the
  // hardware slots and protect pages, and the guest's own debug registers must still behave.
  script.commands = {"watch *(long*)0x4000000",  "watch *(long*)0x4000008",
                     "watch *(int*)0x4001000",   "rwatch *(long*)0x4002000",
                     "awatch *(long*)0x4003000", "watch *(long*)0x4004000",
                     "hbreak *0x4005000",        "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(matches(result.serial, R"(summary: [1-9][0-9]* passed, 0 failed)"));
  EXPECT_TRUE(contains(result.gdb_output, "[Inferior 1 (Remote target) exited normally]"));
  EXPECT_EQ(result.drvm_status, exit_port_status(0));
}

// A script probing the port (connect, close, no packet) must neither release the held guest nor
// stop the stub from listening: gdb still finds the guest at its first instruction.
TEST(GdbE2e, ProbingThePortLeavesTheGuestHeldAndTheStubListening) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.probes_before_gdb = 3;
  script.commands = {"info registers rip", "break gdbwork_marker", "continue", "delete",
                     "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(matches(result.gdb_output, R"(Breakpoint 1, gdbwork_marker \(round=[^)]*1\))"));
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

// detach lets the guest run on, and the stub keeps listening: the next gdb stops it.
TEST(GdbE2e, AfterADetachASecondGdbAttachesAndStopsTheGuest) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.drvm_args = {"--cmdline", "spin"};
  script.commands = {"detach"};
  script.second_gdb_commands =
      std::vector<std::string>{"info registers rip", "set var spin_release = 1", "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "[Inferior 1 (Remote target) detached]"));
  EXPECT_TRUE(matches(result.second_gdb_output, R"(rip +0x[0-9a-f]+ )"));
  EXPECT_TRUE(contains(result.second_gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

// A gdb that vanishes while the guest is stopped leaves it stopped; the next gdb continues it.
TEST(GdbE2e, AGdbThatVanishesLeavesTheGuestStoppedForTheNext) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  // `kill -9` of itself: the connection closes without a detach.
  script.commands = {"break gdbwork_marker", "continue", "shell kill -9 $PPID"};
  script.second_gdb_commands = std::vector<std::string>{"info registers rip", "delete", "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(matches(result.gdb_output, R"(Breakpoint 1, gdbwork_marker)"));
  EXPECT_TRUE(
      matches(result.second_gdb_output, R"(rip +0x[0-9a-f]+ +0x[0-9a-f]+ <gdbwork_marker)"));
  EXPECT_TRUE(contains(result.second_gdb_output, kExitedWith3));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

// A triple fault under gdb is a SIGSEGV stop with the state kept; continuing ends the run as a
// triple fault (status 8).
TEST(GdbE2e, TripleFaultStopsWithSigsegvAndKeepsTheRegisters) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.image = "triplefault";
  script.commands = {"continue", "info registers rip cr0", "x/2xb $pc", "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "Program received signal SIGSEGV, Segmentation fault."));
  EXPECT_TRUE(matches(result.gdb_output, R"(rip +0x[0-9a-f]+ +0x[0-9a-f]+ <guest_main)"));
  EXPECT_TRUE(matches(result.gdb_output, R"(cr0 +0x80000011 )"));
  EXPECT_TRUE(matches(result.gdb_output, R"(<guest_main\+[0-9]+>:\s+0x0f\s+0x0b)"));  // ud2
  EXPECT_TRUE(contains(result.gdb_output, "Program terminated with signal SIGSEGV"));
  EXPECT_EQ(result.drvm_status, 8);
  EXPECT_TRUE(contains(result.drvm_log, "drvm: triple fault"));
}

TEST(GdbE2e, HaltStopsWithSigtrapAndDetachEndsTheRunAsAHalt) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.image = "halt";
  script.commands = {"continue", "x/i $pc - 1", "detach"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "Program received signal SIGTRAP"));
  EXPECT_TRUE(matches(result.gdb_output, R"(hlt)"));
  EXPECT_EQ(result.drvm_status, 6);
  EXPECT_TRUE(contains(result.drvm_log, "drvm: guest halted"));
}

// gdb removes and re-inserts its breakpoints at every stop: the counts survive that, and the
// --event events are listed with theirs.
TEST(GdbE2e, MonitorEventsKeepsHitCountsAndListsTheSessionEvents) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.drvm_args = {"--event", "mem:watch_0:w"};
  script.commands = {"break gdbwork_marker", "continue", "continue",
                     "monitor events",       "delete",   "continue"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(matches(result.gdb_output,
                      R"(Z0 break +0x[0-9a-f]+ len 1 +hits 2( \(not inserted now\))?\n)"));
  EXPECT_TRUE(matches(result.gdb_output, R"(--event: 1 event)"));
  EXPECT_TRUE(matches(result.gdb_output, R"(mem:watch_0:w +watch_0 +count [0-9]+)"));
  EXPECT_TRUE(contains(result.gdb_output, kExitedWith3));
}

TEST(GdbE2e, ListeningLineGivesTheGdbCommandToPaste) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.commands = {"kill"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(matches(result.drvm_log,
                      "drvm: gdb: listening on 127\\.0\\.0\\.1:([0-9]+); connect with: gdb -ex "
                      "'target remote 127\\.0\\.0\\.1:\\1' " +
                          guest_image_path("gdbwork") + "\n"));
}

// Two vCPUs as two threads (smp-debugregs.elf with drs=off: the guest leaves its own DRs alone).
// watched[1] is written only by CPU 1 (APIC ID 1), so the watchpoint stops with thread 2 selected
// and its first value; each thread has its own registers (thread 2 on its AP stack, thread 1 on
// the image's stack); and with scheduler-locking a stepi of thread 2 leaves thread 1 where it was.
TEST(GdbE2e, TwoVcpusAreTwoThreadsAndAWatchpointStopsTheOneThatWrote) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.image = "smp-debugregs";
  script.drvm_args = {"--cpus", "2", "--cmdline", "drs=off"};
  script.commands =
      to_guest_main({"info threads", "watch watched[1]", "continue", "info threads", "p/x $rip",
                     "p/x $rsp", "thread 1", "p/x $rip", "p/x $rsp", "set scheduler-locking on",
                     "thread 2", "stepi", "p/x $rip", "thread 1", "p/x $rip", "p/x $rsp", "delete",
                     "set scheduler-locking off", "continue"});
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  // `info threads` before and after the stop: both vCPUs, thread 2 selected at the stop.
  EXPECT_EQ(count(out, "Thread 1 (vCPU 0)"), 2u);
  EXPECT_EQ(count(out, "Thread 2 (vCPU 1)"), 2u);
  EXPECT_TRUE(matches(out, R"(\*\s+2\s+Thread 2 \(vCPU 1\))"));
  EXPECT_TRUE(matches(out, R"(Thread 2 [^\n]*hit Hardware watchpoint 2: watched\[1\]\n\nOld )"
                           R"(value = 0\nNew value = 1\n)"));
  // The values printed, in order: thread 2's RIP and RSP, thread 1's, thread 2's RIP after its
  // stepi, thread 1's RIP and RSP after it.
  std::vector<std::uint64_t> values;
  const std::regex value(R"(\$([0-9]+) = 0x([0-9a-f]+))");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), value); it != std::sregex_iterator();
       ++it) {
    values.push_back(std::stoull((*it)[2], nullptr, 16));
  }
  ASSERT_EQ(values.size(), 7u) << out;
  const std::string image = guest_image_path("smp-debugregs");
  const auto after_write = elf_symbol_address(image, "smp_dr_after_own_write");
  const auto ap_stacks = elf_symbol_address(image, "ap_stacks");
  const auto stack_bottom = elf_symbol_address(image, "__stack_bottom");
  const auto stack_top = elf_symbol_address(image, "__stack_top");
  ASSERT_TRUE(after_write && ap_stacks && stack_bottom && stack_top);
  constexpr std::uint64_t kApStack = 16 * 1024;  // guestfw's GUESTFW_AP_STACK_SIZE
  EXPECT_EQ(values[0], *after_write);            // the watch traps after CPU 1's write
  EXPECT_GT(values[1], *ap_stacks + kApStack);   // CPU 1's stack: ap_stacks[1]
  EXPECT_LE(values[1], *ap_stacks + 2 * kApStack);
  EXPECT_GT(values[3], *stack_bottom);  // CPU 0 on the image's own stack
  EXPECT_LE(values[3], *stack_top);
  EXPECT_NE(values[4], values[0]);  // thread 2 stepped
  EXPECT_EQ(values[5], values[2]);  // thread 1 did not move
  EXPECT_EQ(values[6], values[3]);
  EXPECT_TRUE(contains(out, "[Inferior 1 (Remote target) exited normally]"));
  EXPECT_EQ(result.drvm_status, exit_port_status(kGuestSuccess));
  EXPECT_EQ(result.serial, smp_debugregs_output(2, false));
}

TEST(GdbE2e, PortInUseIsOneLineAndStatus2) {
  if (!kvm_usable()) GTEST_SKIP() << "/dev/kvm is missing or not usable";
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t size = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size);
  const std::string port = std::to_string(ntohs(address.sin_port));
  const ProcessResult result =
      run_process({DRVM_BINARY, "run", guest_image_path("gdbwork"), "--gdb", port});
  ::close(listener);
  EXPECT_EQ(result.exit_status, 2) << describe(result);
  EXPECT_EQ(result.stderr_text,
            "drvm: gdb: cannot listen on 127.0.0.1:" + port +
                ": Address already in use; choose another port or stop the program using it\n");
  EXPECT_EQ(result.stdout_text, "");
}

}  // namespace
}  // namespace drvm::test
