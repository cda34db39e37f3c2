// Multiboot images and boot modules under `drvm run` (label vm): the guestfw images built as
// NAME.mb.elf print what their PVH builds print, bootinfo prints every field of the Multiboot
// information as drvm defines it (its memory map, mem_lower/mem_upper, command line, loader name,
// modules with their strings), --initrd reaches PVH images through start_info's modlist, and the
// a.out-kludge binary boots. (The whole guestfw suite runs as Multiboot in
// guestfw/suites/guestfw-multiboot.toml; drtest.mb.elf in tests/drtest.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bootinfo_expectations.hpp"
#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

class VmMultiboot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not usable";
  }

  static ProcessResult drvm_run(const std::string& path, std::vector<std::string> options = {}) {
    std::vector<std::string> argv = {DRVM_BINARY, "run", path};
    argv.insert(argv.end(), options.begin(), options.end());
    return run_process(argv, {.timeout = std::chrono::seconds(20)});
  }
};

TEST_F(VmMultiboot, HelloPrintsBannerAndCommandLine) {
  const ProcessResult plain = drvm_run(guest_image_path("hello.mb"));
  EXPECT_EQ(plain.stdout_text, hello_output());
  EXPECT_EQ(plain.exit_status, exit_port_status(kGuestSuccess)) << describe(plain);
  const ProcessResult with_cmdline =
      drvm_run(guest_image_path("hello.mb"), {"--cmdline", "greeting=hi verbose"});
  EXPECT_EQ(with_cmdline.stdout_text, hello_output("greeting=hi verbose"));
}

TEST_F(VmMultiboot, SelftestPassesEveryCase) {
  const ProcessResult run = drvm_run(guest_image_path("selftest.mb"));
  EXPECT_EQ(run.stdout_text, selftest_output());
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(VmMultiboot, TestFrameworkReportsEveryOutcome) {
  const ProcessResult run = drvm_run(guest_image_path("testfw-outcomes.mb"));
  EXPECT_EQ(normalize_testfw_outcomes(run.stdout_text),
            testfw_outcomes_output("testfw-outcomes.mb64"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestTestFailure)) << describe(run);
}

TEST_F(VmMultiboot, FaultPrintsTheGuestRegisterDump) {
  const ProcessResult run = drvm_run(guest_image_path("fault.mb"));
  EXPECT_EQ(run.stdout_text, fault_output(kFaultRflagsHardware, "fault.mb64"));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestUnexpectedException)) << describe(run);
}

TEST_F(VmMultiboot, BootinfoPrintsEveryField) {
  const TestModules modules(
      {{"a.bin", "arg1 arg2", "first module\n"}, {"b.bin", "", std::string(5000, 'b') + "end"}});
  const std::string image = guest_image_path("bootinfo.mb");
  const ProcessResult run =
      drvm_run(image, {"--mem", "64M", "--cmdline", "hello x=1", "--initrd", modules.option()});
  const std::string expected =
      bootinfo_modules_output("bootinfo.mb64", "hello x=1", modules.list()) +
      "memmap: 4 entries\n"
      "memmap 0: 0-0x10000 type 2\n"
      "memmap 1: 0x10000-0xa0000 type 1\n"
      "memmap 2: 0xa0000-0x100000 type 2\n"
      "memmap 3: 0x100000-0x4000000 type 1\n"
      "multiboot info at 0x000000000000a000\n"
      "multiboot flags 0x24f\n"
      "multiboot mem_lower 640 KiB mem_upper 64512 KiB\n"
      "multiboot boot_device 0x8000ffff\n"
      "multiboot cmdline \"" +
      image +
      " hello x=1\"\n"
      "multiboot boot_loader_name \"drvm\"\n"
      "multiboot mods_count 2\n"
      "multiboot mmap_length 96\n"
      "multiboot mmap size 20 0-0x10000 type 2\n"
      "multiboot mmap size 20 0x10000-0xa0000 type 1\n"
      "multiboot mmap size 20 0xa0000-0x100000 type 2\n"
      "multiboot mmap size 20 0x100000-0x4000000 type 1\n";
  EXPECT_EQ(run.stdout_text, expected);
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// --initrd repeated and comma-separated: the modules in order, each with its string.
TEST_F(VmMultiboot, InitrdReachesPvhImagesThroughStartInfo) {
  const TestModules modules({{"p.bin", "pvh arg", "pvh module"}, {"q.bin", "", "q"}});
  const ProcessResult run =
      drvm_run(guest_image_path("bootinfo"),
               {"--cmdline", "only=modules", "--initrd", modules.list()[0].spec(), "--initrd",
                modules.list()[1].spec()});
  EXPECT_EQ(run.stdout_text, bootinfo_modules_output("bootinfo", "only=modules", modules.list()));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

TEST_F(VmMultiboot, AoutKludgeBinaryBoots) {
  const TestModules modules({{"k.bin", "k", "kludge"}});
  const ProcessResult run = drvm_run(std::string(DRVM_GUEST_DIR) + "/bootinfo.aout.bin",
                                     {"--cmdline", "only=modules", "--initrd", modules.option()});
  EXPECT_EQ(run.stdout_text,
            bootinfo_modules_output("bootinfo.mb64", "only=modules", modules.list()));
  EXPECT_EQ(run.exit_status, exit_port_status(kGuestSuccess)) << describe(run);
}

// Refused before KVM is opened, so it runs on any host.
TEST(Multiboot, ModuleThatDoesNotFitInRamIsRefusedInOneLine) {
  // 3 MiB fits in 4 MiB of RAM alone, but not after the image at 1 MiB.
  const TestModules modules({{"big.bin", "", std::string(3 << 20, 'x')}});
  const ProcessResult run = run_process({DRVM_BINARY, "run", guest_image_path("bootinfo.mb"),
                                         "--mem", "4M", "--initrd", modules.option()});
  EXPECT_EQ(run.exit_status, 2) << describe(run);
  EXPECT_TRUE(run.stdout_text.empty());
  EXPECT_EQ(run.stderr_text.rfind("drvm: --initrd: module " + modules.list()[0].path +
                                      " (3145728 bytes) does not fit in guest RAM",
                                  0),
            0u)
      << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("raise --mem to at least"), std::string::npos);
  EXPECT_EQ(std::count(run.stderr_text.begin(), run.stderr_text.end(), '\n'), 1);
}

}  // namespace
}  // namespace drvm::test
