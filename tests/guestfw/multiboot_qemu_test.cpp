// Multiboot images under QEMU's PC machine (`qemu-system-x86_64 -kernel IMAGE -initrd A,B -append
// ...`, the reference drvm follows; label qemu): the guestfw images built as NAME.mb.elf print what
// their PVH builds print, bootinfo.mb.elf sees each module with its string, and drvm and QEMU print
// exactly the same for a Multiboot image with two modules and a command line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "bootinfo_expectations.hpp"
#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

class QemuMultiboot : public ::testing::Test {
 protected:
  void SetUp() override {
    qemu_ = find_in_path("qemu-system-x86_64");
    if (!qemu_)
      GTEST_SKIP() << "qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)";
  }

  // QEMU multiboot-loads through the PC machine's firmware (microvm has no Multiboot loader).
  // etc/sercon-port=0 keeps SeaBIOS off COM1, so the serial output is the guest's alone.
  ProcessResult boot(const std::string& path, const std::string& cmdline = "",
                     const std::string& initrd = "") {
    std::vector<std::string> argv = {
        *qemu_,       "-M",         "pc",      "-accel",
        "tcg",        "-m",         "128M",    "-nodefaults",
        "-nographic", "-no-reboot", "-fw_cfg", "name=etc/sercon-port,string=0",
        "-kernel",    path,         "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-serial",    "stdio"};
    if (!cmdline.empty()) argv.insert(argv.end(), {"-append", cmdline});
    if (!initrd.empty()) argv.insert(argv.end(), {"-initrd", initrd});
    return run_process(argv, {.timeout = std::chrono::seconds(60)});
  }

  std::optional<std::string> qemu_;
};

TEST_F(QemuMultiboot, HelloPrintsBannerAndCommandLine) {
  const ProcessResult plain = boot(guest_image_path("hello.mb"));
  EXPECT_EQ(plain.stdout_text, hello_output());
  EXPECT_EQ(plain.exit_status, exit_port_status(kGuestSuccess)) << describe(plain);
  // QEMU passes "IMAGE CMDLINE"; guestfw drops the image's name as it does for drvm.
  const ProcessResult with_cmdline = boot(guest_image_path("hello.mb"), "greeting=hi verbose");
  EXPECT_EQ(with_cmdline.stdout_text, hello_output("greeting=hi verbose"));
}

TEST_F(QemuMultiboot, SelftestPassesEveryCase) {
  const ProcessResult run = boot(guest_image_path("selftest.mb"));
  EXPECT_EQ(run.stdout_text, selftest_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(QemuMultiboot, TestFrameworkReportsEveryOutcome) {
  const ProcessResult run = boot(guest_image_path("testfw-outcomes.mb"));
  EXPECT_EQ(normalize_testfw_outcomes(run.stdout_text),
            testfw_outcomes_output("testfw-outcomes.mb64"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestTestFailure)) << describe(run);
}

TEST_F(QemuMultiboot, FaultPrintsTheGuestRegisterDump) {
  const ProcessResult run = boot(guest_image_path("fault.mb"));
  EXPECT_EQ(run.stdout_text, fault_output(kFaultRflagsQemuTcg, "fault.mb64"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestUnexpectedException)) << describe(run);
}

TEST_F(QemuMultiboot, BootinfoSeesEveryModuleAndQemusFields) {
  const TestModules modules(
      {{"a.bin", "arg1 arg2", "first module\n"}, {"b.bin", "", std::string(5000, 'b') + "end"}});
  const ProcessResult run = boot(guest_image_path("bootinfo.mb"), "hello x=1", modules.option());
  const std::string expected_start =
      bootinfo_modules_output("bootinfo.mb64", "hello x=1", modules.list());
  EXPECT_EQ(run.stdout_text.substr(0, expected_start.size()), expected_start) << run.stdout_text;
  EXPECT_NE(run.stdout_text.find("\nmultiboot flags 0x24f\n"), std::string::npos);
  EXPECT_NE(run.stdout_text.find("\nmultiboot boot_loader_name \"qemu\"\n"), std::string::npos);
  EXPECT_NE(run.stdout_text.find("\nmultiboot cmdline \"" + guest_image_path("bootinfo.mb") +
                                 " hello x=1\"\n"),
            std::string::npos)
      << run.stdout_text;
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The same image as a flat binary whose Multiboot header carries the a.out kludge's fields.
TEST_F(QemuMultiboot, AoutKludgeBinaryBoots) {
  const TestModules modules({{"k.bin", "k", "kludge"}});
  const ProcessResult run =
      boot(std::string(DRVM_GUEST_DIR) + "/bootinfo.aout.bin", "only=modules", modules.option());
  EXPECT_EQ(run.stdout_text,
            bootinfo_modules_output("bootinfo.mb64", "only=modules", modules.list()));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// The acceptance check: two modules and a command line, identical serial output.
TEST_F(QemuMultiboot, DrvmPrintsExactlyWhatQemuPrints) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not usable";
  const TestModules modules(
      {{"one.bin", "first module args", "module one"}, {"two.bin", "", std::string(9000, 't')}});
  const std::string image = guest_image_path("bootinfo.mb");
  const std::string cmdline = "only=modules peer=1";
  const ProcessResult qemu = boot(image, cmdline, modules.option());
  const ProcessResult drvm = run_process({DRVM_BINARY, "run", image, "--mem", "128M", "--cmdline",
                                          cmdline, "--initrd", modules.option()},
                                         {.timeout = std::chrono::seconds(20)});
  EXPECT_EQ(qemu.stdout_text, bootinfo_modules_output("bootinfo.mb64", cmdline, modules.list()));
  EXPECT_EQ(drvm.stdout_text, qemu.stdout_text);
  EXPECT_EQ(qemu.exit_status, exit_port_status(kGuestSuccess)) << describe(qemu);
  EXPECT_EQ(drvm.exit_status, exit_port_status(kGuestSuccess)) << describe(drvm);
}

}  // namespace
}  // namespace drvm::test
