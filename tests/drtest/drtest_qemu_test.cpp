// drtest.elf under QEMU TCG, the reference: every case passes except the known-to-differ ones,
// which skip; and without the flag those (and only those) fail, so the list is neither short nor
// padded.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "drtest_expectations.hpp"
#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

class DrtestQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = find_in_path("qemu-system-x86_64");
    if (!qemu_)
      GTEST_SKIP() << "qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)";
  }

  // The command line tests/guestfw uses (see qemu_images_test.cpp), with cmdline as -append.
  // multiboot: drtest.mb.elf on the PC machine, as tests/guestfw/multiboot_qemu_test.cpp boots it.
  // cpus: -smp (the MADT QEMU's microvm gives lists them; drtest then runs on each in turn).
  ProcessResult boot(const std::string& cmdline, bool multiboot = false, unsigned cpus = 1) {
    std::vector<std::string> argv = {*qemu_,        "-accel",     "tcg",
                                     "-nodefaults", "-nographic", "-no-reboot"};
    if (multiboot) {
      argv.insert(argv.end(), {"-M", "pc", "-fw_cfg", "name=etc/sercon-port,string=0", "-kernel",
                               guest_image_path("drtest.mb")});
    } else {
      argv.insert(argv.end(), {"-M", "microvm", "-kernel", guest_image_path("drtest")});
    }
    argv.insert(argv.end(),
                {"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-serial", "stdio"});
    if (!cmdline.empty()) argv.insert(argv.end(), {"-append", cmdline});
    if (cpus != 1) argv.insert(argv.end(), {"-smp", std::to_string(cpus)});
    return run_process(argv);
  }

  std::optional<std::string> qemu_;
};

TEST_F(DrtestQemu, PassesEveryCaseQemuImplements) {
  const ProcessResult run = boot(kDrtestQemuTcgCmdline);
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kQemuTcg));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(DrtestQemu, MultibootBuildPassesEveryCaseQemuImplements) {
  const ProcessResult run = boot(kDrtestQemuTcgCmdline, true);
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kQemuTcg));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(DrtestQemu, WithoutTheFlagFailsExactlyTheKnownToDifferCases) {
  const ProcessResult run = boot("");
  std::set<std::string> expected_failures, failures, passes;
  for (const DrtestCase& test : drtest_cases())
    if (!test.qemu_tcg_skip_reason.empty()) expected_failures.insert(test.name);
  for (const DrtestOutcome& outcome : drtest_outcomes(run.stdout_text))
    (outcome.verdict == "FAIL" ? failures : passes).insert(outcome.name);
  EXPECT_EQ(failures, expected_failures) << run.stdout_text;
  EXPECT_EQ(passes.size() + failures.size(), drtest_cases().size()) << run.stdout_text;
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestTestFailure)) << describe(run);
}

// -smp 2: the whole list on CPU 0, then on CPU 1, each with its summary, then the per-CPU table.
TEST_F(DrtestQemu, PassesEveryCaseQemuImplementsOnEachOfTwoCpus) {
  const ProcessResult run = boot(kDrtestQemuTcgCmdline, false, 2);
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kQemuTcg, 2));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// A CPU's failures are its own: without the flag each CPU fails exactly the known-to-differ cases,
// both CPUs are reported as failed, and so is the image.
TEST_F(DrtestQemu, WithoutTheFlagEachOfTwoCpusFailsExactlyTheKnownToDifferCases) {
  const ProcessResult run = boot("", false, 2);
  std::multiset<std::string> expected_failures, failures;
  for (const DrtestCase& test : drtest_cases())
    if (!test.qemu_tcg_skip_reason.empty()) expected_failures.insert({test.name, test.name});
  std::size_t outcomes = 0;
  for (const DrtestOutcome& outcome : drtest_outcomes(run.stdout_text)) {
    ++outcomes;
    if (outcome.verdict == "FAIL") failures.insert(outcome.name);
  }
  EXPECT_EQ(failures, expected_failures) << run.stdout_text;
  EXPECT_EQ(outcomes, 2 * drtest_cases().size()) << run.stdout_text;
  EXPECT_NE(run.stdout_text.find("drtest: 2 of 2 CPUs failed\n"), std::string::npos)
      << run.stdout_text;
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestTestFailure)) << describe(run);
}

TEST_F(DrtestQemu, FilterRunsOnlyMatchingCases) {
  const ProcessResult run = boot(std::string(kDrtestQemuTcgCmdline) + " filter=general_detect");
  EXPECT_EQ(run.stdout_text,
            "SKIP general_detect_faults_on_mov_to_dr: QEMU TCG does not implement general detect\n"
            "SKIP general_detect_faults_on_mov_from_dr: QEMU TCG does not implement general "
            "detect\n"
            "summary: 0 passed, 0 failed, 2 skipped\n");
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

}  // namespace
}  // namespace drvm::test
