// Boots every PVH guestfw image under QEMU (microvm, TCG) and checks its serial output and exit
// status: the reference drvm is held to (vm_images_test.cpp expects the same output).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

class QemuImages : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = find_in_path("qemu-system-x86_64");
    if (!qemu_)
      GTEST_SKIP() << "qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)";
  }

  // The command line in docs/guestfw.md: -nodefaults leaves COM1 to -serial stdio alone (with the
  // defaults, -nographic puts the monitor on stdio too), -no-reboot turns a triple fault into an
  // exit instead of a reboot loop. ioapic2=off: one I/O APIC, as drvm has (microvm adds a second
  // one at GSI 24 by default); the PIT and the PIC are on by default under TCG.
  ProcessResult boot(const std::string& image, const std::string& cmdline = "",
                     ProcessOptions options = {}, unsigned cpus = 1) {
    std::vector<std::string> argv = {*qemu_,
                                     "-M",
                                     "microvm,ioapic2=off",
                                     "-accel",
                                     "tcg",
                                     "-nodefaults",
                                     "-nographic",
                                     "-no-reboot",
                                     "-kernel",
                                     guest_image_path(image),
                                     "-device",
                                     "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                     "-serial",
                                     "stdio"};
    if (!cmdline.empty()) argv.insert(argv.end(), {"-append", cmdline});
    if (cpus != 1) argv.insert(argv.end(), {"-smp", std::to_string(cpus)});
    return run_process(argv, options);
  }

  std::optional<std::string> qemu_;
};

TEST_F(QemuImages, HelloPrintsBannerAndExitsWithZero) {
  const ProcessResult run = boot("hello");
  EXPECT_EQ(run.stdout_text, hello_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, HelloEchoesTheCommandLine) {
  const ProcessResult run = boot("hello", "greeting=hi verbose");
  EXPECT_EQ(run.stdout_text, hello_output("greeting=hi verbose"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, SelftestPassesEveryCase) {
  const ProcessResult run = boot("selftest");
  EXPECT_EQ(run.stdout_text, selftest_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, SelftestFilterRunsOnlyMatchingCases) {
  const ProcessResult run = boot("selftest", "filter=exception_page_fault");
  EXPECT_EQ(run.stdout_text, selftest_output("exception_page_fault"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, TestFrameworkReportsEveryOutcome) {
  const ProcessResult run = boot("testfw-outcomes");
  EXPECT_EQ(normalize_testfw_outcomes(run.stdout_text), testfw_outcomes_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestTestFailure)) << describe(run);
}

// The reverse-execution image (tests/e2e/gdb_reverse_test.cpp): drvm must print the same.
TEST_F(QemuImages, ReverseRunsEveryPhaseForEachSeed) {
  for (const std::uint64_t seed : {1u, 2u, 7u}) {
    const ProcessResult run = boot("reverse", "seed=" + std::to_string(seed));
    EXPECT_EQ(run.stdout_text, reverse_output(seed)) << "seed " << seed;
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

// QEMU has no "guest halted" outcome: the guest sits in HLT until we stop it.
TEST_F(QemuImages, HaltStopsAfterItsLine) {
  const ProcessResult run = boot("halt", "", {.stop_when_stdout_ends_with = kHaltOutput});
  EXPECT_EQ(run.stdout_text, kHaltOutput);
  EXPECT_TRUE(run.stopped_on_output) << describe(run);
}

TEST_F(QemuImages, SpinRunsUntilStopped) {
  const ProcessResult run = boot("spin", "", {.stop_when_stdout_ends_with = kSpinOutput});
  EXPECT_EQ(run.stdout_text, kSpinOutput);
  EXPECT_TRUE(run.stopped_on_output) << describe(run);
}

// With -no-reboot QEMU ends a triple fault (a reset request) with status 0.
TEST_F(QemuImages, TripleFaultEndsTheRun) {
  const ProcessResult run = boot("triplefault");
  EXPECT_EQ(run.stdout_text, kTripleFaultOutput);
  EXPECT_EQ(run.exit_status, 0) << describe(run);
}

TEST_F(QemuImages, UnclaimedPortsReadAllOnes) {
  const ProcessResult run = boot("ioport");
  EXPECT_EQ(run.stdout_text, kIoPortOutput);
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The SMP images under -smp N: the output drvm --cpus N is held to (vm_images_test.cpp).
TEST_F(QemuImages, SmpHelloStartsEveryCpu) {
  for (const unsigned cpus : {1u, 2u, 4u}) {
    const ProcessResult run = boot("smp-hello", "", {}, cpus);
    EXPECT_EQ(run.stdout_text, smp_hello_output(cpus)) << cpus << " CPUs";
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

TEST_F(QemuImages, SmpIpiAnswersEveryPing) {
  for (const unsigned cpus : {1u, 2u, 4u}) {
    const ProcessResult run = boot("smp-ipi", "", {}, cpus);
    EXPECT_EQ(run.stdout_text, smp_ipi_output(cpus)) << cpus << " CPUs";
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

// Each CPU's debug registers are its own: its watch and breakpoints give it exactly its own #DBs.
TEST_F(QemuImages, SmpDebugRegistersArePerCpu) {
  for (const unsigned cpus : {1u, 2u, 4u}) {
    const ProcessResult run = boot("smp-debugregs", "", {}, cpus);
    EXPECT_EQ(run.stdout_text, smp_debugregs_output(cpus)) << cpus << " CPUs";
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

TEST_F(QemuImages, SmpDebugRegistersOffMeansNoDebugException) {
  const ProcessResult run = boot("smp-debugregs", "drs=off", {}, 2);
  EXPECT_EQ(run.stdout_text, smp_debugregs_output(2, false));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, SmpHaltWakesCpu0ByIpi) {
  const ProcessResult run = boot("smp-halt", "wake=1", {}, 2);
  EXPECT_EQ(run.stdout_text, smp_halt_output(2, true));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The platform images: interrupts in HLT from both timers, and the ACPI tables (docs/vmm.md).
TEST_F(QemuImages, TimerCountsLapicAndPitTicksInHlt) {
  const ProcessResult run = boot("timer");
  EXPECT_EQ(run.stdout_text, timer_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, TimerTakesItsTickCountFromTheCommandLine) {
  const ProcessResult run = boot("timer", "ticks=2");
  EXPECT_EQ(run.stdout_text, timer_output(2));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, AcpiTablesListTheApics) {
  const ProcessResult run = boot("acpi");
  EXPECT_EQ(run.stdout_text, kAcpiOutput);
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// QEMU has no "guest halted" outcome: with nothing armed the guest waits forever.
TEST_F(QemuImages, IdleWaitsAfterItsLine) {
  const ProcessResult run = boot("idle", "", {.stop_when_stdout_ends_with = kIdleOutput});
  EXPECT_EQ(run.stdout_text, kIdleOutput);
  EXPECT_TRUE(run.stopped_on_output) << describe(run);
}

TEST_F(QemuImages, FirstbyteWritesAtItsFirstInstruction) {
  const ProcessResult run = boot("firstbyte");
  EXPECT_EQ(run.stdout_text, "!\n");
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuImages, FaultPrintsTheGuestRegisterDump) {
  const ProcessResult run = boot("fault");
  EXPECT_EQ(run.stdout_text, fault_output(kFaultRflagsQemuTcg));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestUnexpectedException)) << describe(run);
}

}  // namespace
}  // namespace drvm::test
