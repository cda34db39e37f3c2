// `drvm` as users type it (issue #14): -h/--help on every subcommand, `drvm help CMD`, the
// version, help that fits 100 columns, QEMU's spellings, `--mem 64` as MiB, `--serial stdio`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "run_drvm.hpp"

namespace drvm::test {
namespace {

std::string guest(const std::string& name) {
  return std::string(DRVM_GUEST_DIR) + "/" + name;
}

bool have_kvm() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}
#define REQUIRE_KVM() \
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

// DRVM_KVM_DEVICE=/dev/null: drvm gets past its command line and the image, then stops at the
// KVM device -- so a test can tell "accepted" from "refused" without a VM.
const std::vector<std::string> kNoKvm = {"DRVM_KVM_DEVICE=/dev/null"};
bool stopped_at_kvm(const DrvmResult& r) {
  return r.status == 2 && r.err.find("not a KVM device") != std::string::npos;
}

std::size_t line_count(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(Help, ShortAndLongHelpOnEverySubcommand) {
  for (const std::string command : {"run", "test", "probe"}) {
    const DrvmResult long_help = run_drvm({command, "--help"});
    EXPECT_EQ(long_help.status, 0) << command << ": " << long_help.err;
    EXPECT_NE(long_help.out.find("usage: drvm " + command), std::string::npos) << long_help.out;
    const DrvmResult short_help = run_drvm({command, "-h"});
    EXPECT_EQ(short_help.status, 0) << command << ": " << short_help.err;
    EXPECT_EQ(short_help.out, long_help.out) << command;
  }
}

TEST(Help, HelpCommandPrintsThatCommandsHelp) {
  for (const std::string command : {"run", "test", "probe"}) {
    const DrvmResult help = run_drvm({"help", command});
    EXPECT_EQ(help.status, 0) << help.err;
    EXPECT_EQ(help.out, run_drvm({command, "--help"}).out) << command;
  }
  const DrvmResult top = run_drvm({"help"});
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("usage: drvm <command>"), std::string::npos) << top.out;
  const DrvmResult bogus = run_drvm({"help", "bogus"});
  EXPECT_EQ(bogus.status, 2);
  EXPECT_EQ(bogus.err, "drvm: unknown command 'bogus'; run 'drvm --help' for the list\n");
}

TEST(Help, VersionIsListedAndPrinted) {
  const DrvmResult top = run_drvm({"--help"});
  EXPECT_NE(top.out.find("-V, --version"), std::string::npos) << top.out;
  for (const std::string flag : {"--version", "-V"}) {
    const DrvmResult version = run_drvm({flag});
    EXPECT_EQ(version.status, 0) << flag;
    EXPECT_EQ(version.out, "drvm " DRVM_VERSION "\n") << flag;
  }
}

TEST(Help, EveryHelpLineFitsOneHundredColumns) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"run", "--help"}, {"test", "--help"}, {"probe", "--help"}}) {
    const DrvmResult help = run_drvm(args);
    std::istringstream lines(help.out);
    std::size_t count = 0;
    for (std::string line; std::getline(lines, line); ++count) {
      EXPECT_LE(line.size(), 100u) << args.front() << ": " << line;
    }
    EXPECT_GT(count, 5u);
  }
}

TEST(Help, EventWithJsonImpliesStat) {
  REQUIRE_KVM();
  const DrvmResult r = run_drvm(
      {"run", guest("countwork.elf"), "--event", "mem:cw_counter:w", "--json", "--timeout", "20"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("\"events\""), std::string::npos) << r.err;
}

struct Hint {
  std::vector<std::string> args;  // after `drvm run IMAGE`
  std::string expected;
};

TEST(QemuSpellings, EachGetsOneLineWithDrvmsEquivalent) {
  const std::vector<Hint> hints = {
      {{"-kernel", "x.elf"},
       "drvm: run: '-kernel' is QEMU's spelling; give the image as the first argument: drvm run "
       "IMAGE\n"},
      {{"-append", "console=ttyS0"}, "--cmdline STR"},
      {{"-m", "64"}, "--mem SIZE (a bare number is MiB, as with -m)"},
      {{"-s"}, "--gdb 1234"},
      {{"-S"}, "holds the guest at its first instruction"},
      {{"-gdb", "tcp::1234"}, "tcp::1234 is --gdb 1234"},
      {{"-serial", "stdio"}, "--serial FILE"},
      {{"-nographic"}, "drvm has no display"},
      {{"-initrd", "initrd.img"}, "--initrd FILE"},
      {{"-smp", "2"}, "--cpus N"},
      {{"-no-reboot"}, "status 8"},
      {{"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"}, "isa-debug-exit at port 0xf4"},
      {{"-enable-kvm"}, "always runs on KVM"},
      {{"-cpu", "host"}, "host's CPU"},
      {{"-d", "int"}, "--trace-io"},
  };
  for (const Hint& hint : hints) {
    std::vector<std::string> args{"run", guest("hello.elf")};
    args.insert(args.end(), hint.args.begin(), hint.args.end());
    const DrvmResult r = run_drvm(args);
    EXPECT_EQ(r.status, 2) << hint.args.front();
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("drvm: run: '" + hint.args.front() + "' is QEMU's spelling; ", 0), 0u)
        << r.err;
    EXPECT_NE(r.err.find(hint.expected), std::string::npos) << r.err;
  }
  // After "--" they are images' names, not options.
  const DrvmResult after_end = run_drvm({"run", "--", "-kernel"});
  EXPECT_EQ(after_end.err.find("QEMU"), std::string::npos) << after_end.err;
}

TEST(MemHabits, ABareNumberIsMiBAsQemuAndManifests) {
  for (const std::string size : {"64", "64M", "65536K", "2", "3072", "3G"}) {
    const DrvmResult r = run_drvm({"run", guest("hello.elf"), "--mem", size}, kNoKvm);
    EXPECT_TRUE(stopped_at_kvm(r)) << size << ": " << r.err;
  }
  const DrvmResult too_small = run_drvm({"run", guest("hello.elf"), "--mem", "1"}, kNoKvm);
  EXPECT_EQ(too_small.status, 2);
  EXPECT_EQ(too_small.err,
            "drvm: run: --mem: 1 is out of range; give a multiple of 4 KiB from 2M to 3G (a bare "
            "number is MiB)\n");
  const DrvmResult bad = run_drvm({"run", guest("hello.elf"), "--mem", "64Q"}, kNoKvm);
  EXPECT_EQ(
      bad.err,
      "drvm: run: --mem: '64Q' is not a size; write a whole number of MiB or one with K, M or "
      "G (e.g. 64M, 1G)\n");
}

// --cpus: a whole number from 1 to 255 (xAPIC IDs), checked before KVM is opened.
TEST(Cpus, AcceptsOneTo255BeforeKvm) {
  for (const std::string count : {"1", "2", "4", "255"}) {
    const DrvmResult r = run_drvm({"run", guest("hello.elf"), "--cpus", count}, kNoKvm);
    EXPECT_TRUE(stopped_at_kvm(r)) << count << ": " << r.err;
  }
}

TEST(Cpus, BadCountsAreOneLineUsageErrors) {
  for (const std::string count : {"0", "256", "-1", "abc", "1.5", "", "2x"}) {
    const DrvmResult r = run_drvm({"run", guest("hello.elf"), "--cpus", count}, kNoKvm);
    EXPECT_EQ(r.status, 2) << count;
    EXPECT_EQ(r.err, "drvm: run: --cpus: '" + count +
                         "' is not a vCPU count; give a whole number from 1 to 255\n");
  }
}

TEST(MemHabits, ABareNumberRunsAGuestWithThatManyMiB) {
  REQUIRE_KVM();
  const DrvmResult r = run_drvm({"run", guest("hello.elf"), "--mem", "64"});
  EXPECT_EQ(r.status, 1) << r.err;
}

// Runs `drvm run hello.elf --serial NAME` in a fresh directory, where a file named NAME would
// land if drvm took it for a file name.
struct SerialRun {
  DrvmResult result;
  bool file_created = false;
};
SerialRun run_with_serial(const std::string& name, const std::vector<std::string>& env) {
  const auto directory = std::filesystem::path(temp_path("serial_cwd"));
  std::filesystem::create_directories(directory);
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(directory);
  SerialRun run;
  run.result = run_drvm({"run", guest("hello.elf"), "--serial", name}, env);
  run.file_created = std::filesystem::exists(directory / name);
  std::filesystem::current_path(previous);
  std::filesystem::remove_all(directory);
  return run;
}

TEST(SerialHabits, StdioAndDashAreNotFileNames) {
  for (const std::string name : {"stdio", "-"}) {
    const SerialRun run = run_with_serial(name, kNoKvm);
    EXPECT_TRUE(stopped_at_kvm(run.result)) << run.result.err;
    EXPECT_FALSE(run.file_created) << name;
  }
  const SerialRun file = run_with_serial("serial.log", kNoKvm);  // a real name still is one
  EXPECT_TRUE(file.file_created);
}

TEST(SerialHabits, StdioAndDashMeanStdout) {
  REQUIRE_KVM();
  const std::string expected = run_drvm({"run", guest("hello.elf")}).out;
  ASSERT_NE(expected.find("hello from the guest"), std::string::npos) << expected;
  for (const std::string name : {"stdio", "-"}) {
    const SerialRun run = run_with_serial(name, {});
    EXPECT_EQ(run.result.status, 1) << run.result.err;
    EXPECT_EQ(run.result.out, expected) << name;
    EXPECT_FALSE(run.file_created) << name;
  }
}

}  // namespace
}  // namespace drvm::test
