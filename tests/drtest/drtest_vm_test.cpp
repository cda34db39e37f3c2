// drtest.elf under `drvm run` and `drvm run --exact`: every case passes, so the output is QEMU
// TCG's (drtest_qemu_test.cpp) except for the known-to-differ cases, which drvm must get right too.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "drtest_expectations.hpp"
#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

class DrtestVm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not usable";
  }

  static ProcessResult drvm_run(std::vector<std::string> options,
                                const std::string& image = "drtest", int timeout_seconds = 10) {
    std::vector<std::string> argv = {DRVM_BINARY, "run", guest_image_path(image), "--timeout",
                                     std::to_string(timeout_seconds)};
    argv.insert(argv.end(), options.begin(), options.end());
    return run_process(argv, {.timeout = std::chrono::seconds(2 * timeout_seconds)});
  }
};

TEST_F(DrtestVm, PassesEveryCase) {
  const ProcessResult run = drvm_run({});
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kExact));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run) << run.stderr_text;
}

// The same suite as a Multiboot image (drtest.mb.elf, guestfw's Multiboot entry).
TEST_F(DrtestVm, PassesEveryCaseAsMultibootImage) {
  const ProcessResult run = drvm_run({}, "drtest.mb");
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kExact));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run) << run.stderr_text;
}

TEST_F(DrtestVm, PassesEveryCaseUnderExact) {
  const ProcessResult run = drvm_run({"--exact"});
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kExact));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run) << run.stderr_text;
}

// The flag only turns the known-to-differ cases into skips; everything else runs as before.
TEST_F(DrtestVm, QemuTcgFlagGivesQemusOutput) {
  const ProcessResult run = drvm_run({"--cmdline", kDrtestQemuTcgCmdline});
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kQemuTcg));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run) << run.stderr_text;
}

// --cpus 2: the whole list on vCPU 0, then on vCPU 1 (its own guest debug registers, started by
// INIT and SIPI after vCPU 0's run), while the other waits in HLT (guestfw/images/drtest_cpus.c).
TEST_F(DrtestVm, PassesEveryCaseOnEachOfTwoVcpus) {
  const ProcessResult run = drvm_run({"--cpus", "2"}, "drtest", 30);
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kExact, 2));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run) << run.stderr_text;
}

TEST_F(DrtestVm, PassesEveryCaseOnEachOfTwoVcpusUnderExact) {
  const ProcessResult run = drvm_run({"--cpus", "2", "--exact"}, "drtest", 30);
  EXPECT_EQ(run.stdout_text, drtest_expected_output(DrtestVmm::kExact, 2));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run) << run.stderr_text;
}

}  // namespace
}  // namespace drvm::test
