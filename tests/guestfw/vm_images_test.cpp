// Boots every guestfw image under `drvm run` and checks it prints exactly what it prints under QEMU
// (guest_images.cpp, checked against QEMU by qemu_images_test.cpp) and ends with the status
// docs/architecture.md gives.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

// drvm run's own outcomes (docs/architecture.md).
constexpr int kStatusTimeout = 4;
constexpr int kStatusHalted = 6;
constexpr int kStatusTripleFault = 8;

class VmImages : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not usable";
  }

  static ProcessResult drvm_run(const std::string& image, std::vector<std::string> options = {}) {
    std::vector<std::string> argv = {DRVM_BINARY, "run", guest_image_path(image)};
    argv.insert(argv.end(), options.begin(), options.end());
    return run_process(argv, {.timeout = std::chrono::seconds(20)});
  }
};

TEST_F(VmImages, HelloPrintsBannerAndExitsWithZero) {
  const ProcessResult run = drvm_run("hello");
  EXPECT_EQ(run.stdout_text, hello_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(VmImages, HelloEchoesTheCommandLine) {
  const ProcessResult run = drvm_run("hello", {"--cmdline", "greeting=hi verbose"});
  EXPECT_EQ(run.stdout_text, hello_output("greeting=hi verbose"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The ELF64 path (no PVH note, entered in long mode): drvm only, QEMU cannot boot it.
TEST_F(VmImages, HelloElf64BootsInLongMode) {
  const ProcessResult run = drvm_run("hello-elf64");
  EXPECT_EQ(run.stdout_text, hello_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The reverse-execution image (tests/e2e/gdb_reverse_test.cpp), as QEMU runs it.
TEST_F(VmImages, ReverseRunsEveryPhaseForEachSeed) {
  for (const std::uint64_t seed : {1u, 2u, 7u}) {
    const ProcessResult run = drvm_run("reverse", {"--cmdline", "seed=" + std::to_string(seed)});
    EXPECT_EQ(run.stdout_text, reverse_output(seed)) << "seed " << seed;
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

TEST_F(VmImages, SelftestPassesEveryCase) {
  const ProcessResult run = drvm_run("selftest");
  EXPECT_EQ(run.stdout_text, selftest_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(VmImages, SelftestFilterRunsOnlyMatchingCases) {
  const ProcessResult run = drvm_run("selftest", {"--cmdline", "filter=exception_page_fault"});
  EXPECT_EQ(run.stdout_text, selftest_output("exception_page_fault"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(VmImages, TestFrameworkReportsEveryOutcome) {
  const ProcessResult run = drvm_run("testfw-outcomes");
  EXPECT_EQ(normalize_testfw_outcomes(run.stdout_text), testfw_outcomes_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestTestFailure)) << describe(run);
}

TEST_F(VmImages, HaltIsReportedAsGuestHalted) {
  const ProcessResult run = drvm_run("halt");
  EXPECT_EQ(run.stdout_text, kHaltOutput);
  EXPECT_EQ(run.exit_status, kStatusHalted) << describe(run);
}

TEST_F(VmImages, SpinEndsAtTheTimeout) {
  const ProcessResult run = drvm_run("spin", {"--timeout", "1"});
  EXPECT_EQ(run.stdout_text, kSpinOutput);
  EXPECT_EQ(run.exit_status, kStatusTimeout) << describe(run);
}

TEST_F(VmImages, TripleFaultIsReported) {
  const ProcessResult run = drvm_run("triplefault");
  EXPECT_EQ(run.stdout_text, kTripleFaultOutput);
  EXPECT_EQ(run.exit_status, kStatusTripleFault) << describe(run);
  EXPECT_FALSE(run.stderr_text.empty()) << "drvm reports a triple fault with the vCPU's registers";
}

TEST_F(VmImages, UnclaimedPortsReadAllOnes) {
  const ProcessResult run = drvm_run("ioport");
  EXPECT_EQ(run.stdout_text, kIoPortOutput);
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The platform images (docs/vmm.md, "Interrupts and timers"): the same output as under QEMU.
TEST_F(VmImages, TimerCountsLapicAndPitTicksInHlt) {
  const ProcessResult run = drvm_run("timer");
  EXPECT_EQ(run.stdout_text, timer_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(VmImages, TimerTakesItsTickCountFromTheCommandLine) {
  const ProcessResult run = drvm_run("timer", {"--cmdline", "ticks=2"});
  EXPECT_EQ(run.stdout_text, timer_output(2));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(VmImages, AcpiTablesListTheApics) {
  const ProcessResult run = drvm_run("acpi");
  EXPECT_EQ(run.stdout_text, kAcpiOutput);
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// sti; hlt with no timer armed and no device interrupt enabled: nothing can come.
TEST_F(VmImages, IdleWithNothingArmedIsReportedAsHalted) {
  const ProcessResult run = drvm_run("idle");
  EXPECT_EQ(run.stdout_text, kIdleOutput);
  EXPECT_EQ(run.exit_status, kStatusHalted) << describe(run);
  EXPECT_NE(run.stderr_text.find("with interrupts enabled, but nothing can raise one"),
            std::string::npos)
      << run.stderr_text;
}

// --cpus N: the BSP starts every AP through INIT and SIPI (guestfw's trampoline), each reports.
// More vCPUs than host CPUs is fine.
TEST_F(VmImages, SmpHelloStartsEveryCpu) {
  for (const unsigned cpus : {1u, 2u, 4u}) {
    const ProcessResult run = drvm_run("smp-hello", {"--cpus", std::to_string(cpus)});
    EXPECT_EQ(run.stdout_text, smp_hello_output(cpus)) << cpus << " vCPUs";
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

TEST_F(VmImages, SmpIpiAnswersEveryPing) {
  for (const unsigned cpus : {1u, 2u, 4u}) {
    const ProcessResult run = drvm_run("smp-ipi", {"--cpus", std::to_string(cpus)});
    EXPECT_EQ(run.stdout_text, smp_ipi_output(cpus)) << cpus << " vCPUs";
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

// Every vCPU has its own guest DR file and slots: each CPU's watch and breakpoints give it exactly
// its own #DBs while the others access the same addresses (docs/dr-virtualization.md).
TEST_F(VmImages, SmpDebugRegistersArePerVcpu) {
  for (const unsigned cpus : {1u, 2u, 4u}) {
    const ProcessResult run = drvm_run("smp-debugregs", {"--cpus", std::to_string(cpus)});
    EXPECT_EQ(run.stdout_text, smp_debugregs_output(cpus)) << cpus << " vCPUs";
    EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
  }
}

TEST_F(VmImages, SmpDebugRegistersOffMeansNoDebugException) {
  const ProcessResult run = drvm_run("smp-debugregs", {"--cpus", "2", "--cmdline", "drs=off"});
  EXPECT_EQ(run.stdout_text, smp_debugregs_output(2, false));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The halt rule with several vCPUs (docs/vmm.md, "HLT"): every vCPU in HLT with nothing armed.
TEST_F(VmImages, SmpAllCpusInHltIsReportedAsHalted) {
  const ProcessResult run = drvm_run("smp-halt", {"--cpus", "2"});
  EXPECT_EQ(run.stdout_text, smp_halt_output(2, false));
  EXPECT_EQ(run.exit_status, kStatusHalted) << describe(run);
  EXPECT_NE(run.stderr_text.find("every vCPU is stopped for good: vCPU 0 executed HLT"),
            std::string::npos)
      << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("; vCPU 1 executed HLT"), std::string::npos) << run.stderr_text;
}

// APs that were never started are stopped for good once the BSP is: halt.elf with 3 vCPUs.
TEST_F(VmImages, SmpCpusWaitingForTheirSipiCountAsStopped) {
  const ProcessResult run = drvm_run("halt", {"--cpus", "3"});
  EXPECT_EQ(run.stdout_text, kHaltOutput);
  EXPECT_EQ(run.exit_status, kStatusHalted) << describe(run);
  EXPECT_NE(run.stderr_text.find("vCPU 1 waits for its startup IPI; vCPU 2 waits for its startup "
                                 "IPI"),
            std::string::npos)
      << run.stderr_text;
}

// A vCPU in HLT with nothing armed is not stopped while another vCPU runs and can send it an IPI:
// vCPU 1 spins for about a second, then wakes vCPU 0, which exits 0 (not "halted").
TEST_F(VmImages, SmpCpuInHltWaitsForAnIpiFromARunningCpu) {
  const ProcessResult run = drvm_run("smp-halt", {"--cpus", "2", "--cmdline", "wake=1"});
  EXPECT_EQ(run.stdout_text, smp_halt_output(2, true));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// COM1's receive interrupt (IRQ 4 through the I/O APIC) wakes the guest from HLT for each byte.
TEST_F(VmImages, EchoIrqReadsInputByInterrupt) {
  const std::string input = ::testing::TempDir() + "/echo-irq-input.txt";
  {
    std::FILE* file = std::fopen(input.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs("typed by the host\n", file);
    std::fclose(file);
  }
  const ProcessResult run =
      run_process({DRVM_BINARY, "run", guest_image_path("echo-irq"), "--timeout", "20"},
                  {.timeout = std::chrono::seconds(30), .stdin_path = input});
  EXPECT_EQ(run.stdout_text, "echo-irq: typed by the host\n");
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// Input that ends before the line does: the receive interrupt can never come again, and the guest
// waiting for it in HLT is halted rather than left to the timeout.
TEST_F(VmImages, EchoIrqWithClosedInputIsReportedAsHalted) {
  const std::string input = ::testing::TempDir() + "/echo-irq-partial.txt";
  {
    std::FILE* file = std::fopen(input.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs("no newline", file);
    std::fclose(file);
  }
  const ProcessResult run =
      run_process({DRVM_BINARY, "run", guest_image_path("echo-irq"), "--timeout", "20"},
                  {.timeout = std::chrono::seconds(30), .stdin_path = input});
  EXPECT_EQ(run.stdout_text, "");
  EXPECT_EQ(run.exit_status, kStatusHalted) << describe(run);
}

TEST_F(VmImages, FirstbyteWritesAtItsFirstInstruction) {
  const ProcessResult run = drvm_run("firstbyte");
  EXPECT_EQ(run.stdout_text, "!\n");
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// Only RFLAGS.RF in the saved frame differs from QEMU TCG's dump (see guest_images.hpp).
TEST_F(VmImages, FaultPrintsTheGuestRegisterDump) {
  const ProcessResult run = drvm_run("fault");
  EXPECT_EQ(run.stdout_text, fault_output(kFaultRflagsHardware));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestUnexpectedException)) << describe(run);
}

}  // namespace
}  // namespace drvm::test
