// VM tests: `drvm run` on hand-assembled images and on the guestfw images, checking serial
// output, exit status and drvm's reports.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "elf_builder.hpp"
#include "run_drvm.hpp"

namespace drvm::test {
namespace {

bool have_kvm() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

#define REQUIRE_KVM() \
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

using Code = std::vector<std::uint8_t>;

// Machine code valid in both 32-bit and 64-bit mode.
Code print(const std::string& text) {
  Code code{0x66, 0xba, 0xf8, 0x03};  // mov dx, 0x3f8
  for (char c : text) {
    code.insert(code.end(), {0xb0, static_cast<std::uint8_t>(c), 0xee});  // mov al, c; out dx, al
  }
  return code;
}
Code exit_with(std::uint8_t value) {
  return {0xb0, value, 0xe6, 0xf4};
}  // mov al, v; out 0xf4, al
Code operator+(Code a, const Code& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string image(const std::string& stem, const Code& code, bool pvh = true, bool is64 = true) {
  TestElf elf;
  elf.is64 = is64;
  elf.pvh_note = pvh;
  elf.pvh_entry = 0x100000;
  elf.entry = 0x100000;
  elf.segments.push_back({0x100000, code, 0x1000});
  return write_temp_file(stem + ".elf", elf.build());
}

std::string guest(const std::string& name) {
  return std::string(DRVM_GUEST_DIR) + "/" + name;
}

TEST(RunTest, PvhSerialAndExitPort) {
  REQUIRE_KVM();
  const auto path = image("hello", print("hi there\n") + exit_with(0x21));
  const auto r = run_drvm({"run", path});
  EXPECT_EQ(r.out, "hi there\n");
  EXPECT_EQ(r.status, (0x21 << 1) | 1);
  EXPECT_EQ(r.err, "");
}

TEST(RunTest, Elf32PvhImageBoots) {
  REQUIRE_KVM();
  const auto path = image("hello32", print("x") + exit_with(0), true, false);
  const auto r = run_drvm({"run", path});
  EXPECT_EQ(r.out, "x");
  EXPECT_EQ(r.status, 1);
}

TEST(RunTest, Elf64WithoutNoteRunsInLongMode) {
  REQUIRE_KVM();
  // mov rax, 0x4100000000000042; shr rax, 56 leaves 'A' in AL only in 64-bit mode.
  const Code code = Code{0x66, 0xba, 0xf8, 0x03, 0x48, 0xb8, 0x42, 0,    0,   0,
                         0,    0,    0,    0x41, 0x48, 0xc1, 0xe8, 0x38, 0xee} +
                    exit_with(3);
  const auto r = run_drvm({"run", image("long", code, false)});
  EXPECT_EQ(r.out, "A");
  EXPECT_EQ(r.status, 7);
}

TEST(RunTest, CmdlineReachesStartInfo) {
  REQUIRE_KVM();
  // mov esi, [ebx+24] (cmdline_paddr); print bytes until NUL; exit 0.
  const Code code = Code{0x8b, 0x73, 0x18, 0x8a, 0x06, 0x84, 0xc0, 0x74, 0x08,
                         0x66, 0xba, 0xf8, 0x03, 0xee, 0x46, 0xeb, 0xf2} +
                    exit_with(0);
  const auto r = run_drvm(
      {"run", image("cmdline", code, true, false), "--cmdline", "console=ttyS0 answer=42"});
  EXPECT_EQ(r.out, "console=ttyS0 answer=42");
  EXPECT_EQ(r.status, 1);
}

TEST(RunTest, WideExitPortWritesKeepLowStatusBits) {
  REQUIRE_KVM();
  // mov eax, 0x12345; out 0xf4, eax -> (0x12345 << 1 | 1) & 0xff = 0x8b
  const auto r = run_drvm({"run", image("wide", {0xb8, 0x45, 0x23, 0x01, 0x00, 0xe7, 0xf4})});
  EXPECT_EQ(r.status, 0x8b);
}

TEST(RunTest, HaltWithInterruptsDisabled) {
  REQUIRE_KVM();
  const auto r = run_drvm({"run", image("halt", {0xfa, 0xf4})});
  EXPECT_EQ(r.status, 6);
  EXPECT_NE(r.err.find("drvm: guest halted"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("interrupts disabled"), std::string::npos) << r.err;
}

// With the in-kernel local APIC the HLT never leaves KVM_RUN: drvm notices the vCPU waits with
// nothing armed (no timer, no device interrupt) and ends the run the same way.
TEST(RunTest, HaltWithInterruptsEnabledAndNothingArmed) {
  REQUIRE_KVM();
  const auto r = run_drvm({"run", image("sti-halt", {0xfb, 0xf4}), "--timeout", "10"});
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_NE(r.err.find("drvm: guest halted: vCPU 0 executed HLT at RIP"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("with interrupts enabled, but nothing can raise one"), std::string::npos)
      << r.err;
}

// fw_cfg reads "absent" (all ones: the "QEMU" signature check fails) and port 0x80 takes writes,
// both without a word on stderr unless --trace-io asks.
TEST(RunTest, FwCfgAndPostPortAreQuietlyAbsent) {
  REQUIRE_KVM();
  // xor eax, eax; out 0x80, al; mov dx, 0x510; out dx, ax (selector 0: the signature);
  // inc edx; in al, dx (its first byte); out 0xf4, al
  const Code code{0x31, 0xc0, 0xe6, 0x80, 0x66, 0xba, 0x10,
                  0x05, 0x66, 0xef, 0x42, 0xec, 0xe6, 0xf4};
  const auto quiet = run_drvm({"run", image("fwcfg", code)});
  EXPECT_EQ(quiet.status, (0xff << 1 | 1) & 0xff);
  EXPECT_EQ(quiet.err, "");
  const auto traced = run_drvm({"run", image("fwcfg", code), "--trace-io"});
  EXPECT_EQ(traced.status, (0xff << 1 | 1) & 0xff);
  EXPECT_NE(traced.err.find("out port=0x0080 size=1 value=0x0 (POST port)"), std::string::npos)
      << traced.err;
  EXPECT_NE(traced.err.find("in  port=0x0511 size=1 value=0xff (fw_cfg, absent)"),
            std::string::npos)
      << traced.err;
}

TEST(RunTest, TimeoutStopsASpinningGuest) {
  REQUIRE_KVM();
  const auto r = run_drvm({"run", image("spin", {0xeb, 0xfe}), "--timeout", "0.5"});
  EXPECT_EQ(r.status, 4);
  EXPECT_NE(r.err.find("drvm: timeout"), std::string::npos) << r.err;
  EXPECT_GE(r.seconds, 0.45);
  EXPECT_LT(r.seconds, 5.0);
}

TEST(RunTest, TripleFaultReportsRegistersAndInstruction) {
  REQUIRE_KVM();
  // ud2 with no IDT: #UD cannot be delivered -> triple fault.
  const auto r = run_drvm({"run", image("ud2", print("before\n") + Code{0x0f, 0x0b}, true, false)});
  EXPECT_EQ(r.status, 8) << r.err;
  EXPECT_EQ(r.out, "before\n");
  EXPECT_NE(r.err.find("triple fault"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("RAX="), std::string::npos);
  EXPECT_NE(r.err.find("CR0="), std::string::npos);
  EXPECT_NE(r.err.find("DR7="), std::string::npos);
  EXPECT_NE(r.err.find("ud2"), std::string::npos) << r.err;
}

TEST(RunTest, UnknownPortsReadAllOnesAndAreTraced) {
  REQUIRE_KVM();
  // mov dx, 0x1234; in al, dx; out dx, al; mov dx, 0xf4; out dx, al -> exit value 0xff.
  // (Port 0x80 is a device now: FwCfgAndPostPortAreQuietlyAbsent.)
  const Code code{0x66, 0xba, 0x34, 0x12, 0xec, 0xee, 0x66, 0xba, 0xf4, 0x00, 0xee};
  const auto path = image("ioport", code);
  const auto quiet = run_drvm({"run", path});
  EXPECT_EQ(quiet.status, 0xff);
  EXPECT_EQ(quiet.err, "");
  const auto traced = run_drvm({"run", path, "--trace-io"});
  EXPECT_EQ(traced.status, 0xff);
  EXPECT_NE(traced.err.find("drvm: io: in  port=0x1234 size=1 value=0xff\n"), std::string::npos)
      << traced.err;
  EXPECT_NE(traced.err.find("drvm: io: out port=0x1234 size=1 value=0xff\n"), std::string::npos);
}

TEST(RunTest, UnmappedMmioReadsAllOnes) {
  REQUIRE_KVM();
  // mov eax, [0xd0000000] (above RAM, no slot, no device; 0xfee00000 is the in-kernel local
  // APIC now); out 0xf4, al -> 0xff
  const Code code{0xa1, 0x00, 0x00, 0x00, 0xd0, 0xe6, 0xf4};
  const auto r = run_drvm({"run", image("mmio", code, true, false), "--trace-io"});
  EXPECT_EQ(r.status, 0xff) << r.err;
  EXPECT_NE(r.err.find("drvm: mmio: read  addr=0xd0000000 size=4 value=0xffffffff"),
            std::string::npos)
      << r.err;
}

TEST(RunTest, SerialFileReceivesOutput) {
  REQUIRE_KVM();
  const std::string serial = temp_path("serial.txt");
  const auto r =
      run_drvm({"run", image("tofile", print("to file\n") + exit_with(0)), "--serial", serial});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(slurp(serial), "to file\n");
  ::unlink(serial.c_str());
}

TEST(RunTest, SerialWriteErrorIsReportedOnceAndEndsWithStatusTwo) {
  REQUIRE_KVM();
  Code program;
  for (int i = 0; i < 20; ++i) {
    const Code line = print("line that cannot be written\n");
    program.insert(program.end(), line.begin(), line.end());
  }
  const Code exit = exit_with(0);
  program.insert(program.end(), exit.begin(), exit.end());
  const auto r = run_drvm({"run", image("full", program), "--serial", "/dev/full"});
  EXPECT_EQ(r.status, 2) << r.err;
  const std::string once = "drvm: serial: cannot write the guest's output: No space left on device";
  const auto first = r.err.find(once);
  EXPECT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(once, first + 1), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("drvm: serial: the guest's output is incomplete: writing /dev/full failed "
                       "(No space left on device); free space or give another --serial file (the "
                       "guest's own status was 1)"),
            std::string::npos)
      << r.err;
}

TEST(RunTest, GdbListensOnBracketedIpv6Literals) {
  REQUIRE_KVM();
  const auto path = image("gdb6", exit_with(0));
  const auto r = run_drvm({"run", path, "--gdb", "[::1]:0", "--gdb-no-wait"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("drvm: gdb: listening on [::1]:"), std::string::npos) << r.err;
  for (const char* bad : {"[::1]", "[::1]1234", "[]:1234", "[::1:1234"}) {
    const auto refused = run_drvm({"run", path, "--gdb", bad});
    EXPECT_EQ(refused.status, 2) << bad;
    EXPECT_NE(refused.err.find("is not [HOST:]PORT"), std::string::npos) << refused.err;
  }
}

TEST(RunTest, SerialInputComesFromStdinFileOrPipe) {
  REQUIRE_KVM();
  const std::string echo = std::string(DRVM_GUEST_DIR) + "/echo.elf";
  const std::string input = temp_path("input.txt");
  std::ofstream(input) << "typed by the host\nignored\n";
  const DrvmResult from_file = run_drvm({"run", echo, "--timeout", "10"}, {}, input);
  ::unlink(input.c_str());
  EXPECT_EQ(from_file.status, 1) << from_file.err;
  EXPECT_EQ(from_file.out, "echo: typed by the host\n");

  const std::string out = temp_path("piped");
  const std::string command = "printf 'through a pipe\\n' | " + std::string(DRVM_BINARY) + " run " +
                              echo + " --timeout 10 > " + out;
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(slurp(out), "echo: through a pipe\n");
  ::unlink(out.c_str());
}

TEST(RunTest, UartRegistersReadBack) {
  REQUIRE_KVM();
  // Write 0x5a to SCR (0x3ff), read it back, exit with it; LSR (0x3fd) must be 0x60.
  const Code code{0x66, 0xba, 0xff, 0x03, 0xb0, 0x5a, 0xee, 0xec, 0x88, 0xc3,  // scr -> bl
                  0x66, 0xba, 0xfd, 0x03, 0xec,                                // lsr -> al
                  0x3c, 0x60, 0x75, 0x04, 0x88, 0xd8, 0xe6, 0xf4,              // == 0x60: exit bl
                  0xb0, 0x00, 0xe6, 0xf4};
  const auto r = run_drvm({"run", image("uart", code)});
  EXPECT_EQ(r.status, (0x5a << 1 | 1) & 0xff);
}

TEST(RunTest, BadImagesAreRefusedWithOneLine) {
  const auto junk = write_temp_file("junk.elf", std::vector<std::byte>(64, std::byte{7}));
  struct Case {
    std::string path;
    std::string expected;
  } cases[] = {
      {"/nonexistent/x.elf", "No such file"},
      {junk, "neither an ELF file nor a Multiboot image"},
      {image("nonote32", exit_with(0), false, false),
       "32-bit ELF with neither a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) nor a Multiboot "
       "header"},
  };
  for (const auto& c : cases) {
    const auto r = run_drvm({"run", c.path});
    EXPECT_EQ(r.status, 2) << c.path;
    EXPECT_EQ(r.err.rfind("drvm: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// --- Multiboot v1 images and --initrd (docs/user-guide.md) ---

Code multiboot_header(std::uint32_t flags, std::int32_t checksum_error = 0,
                      const std::vector<std::uint32_t>& address_fields = {}) {
  Code out;
  auto put32 = [&out](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  put32(0x1badb002);
  put32(flags);
  put32(static_cast<std::uint32_t>(0 - 0x1badb002u - flags + checksum_error));
  for (std::uint32_t field : address_fields) put32(field);
  return out;
}

// 32-bit code: exits with the Multiboot information's flags (low byte) when EAX holds the boot
// magic, with 0x55 otherwise.
const Code kExitWithMultibootFlags = {
    0x3d, 0x02, 0xb0, 0xad, 0x2b,  // cmp eax, 0x2badb002
    0x75, 0x04,                    // jne fail
    0x8a, 0x03,                    // mov al, [ebx]
    0xe6, 0xf4,                    // out 0xf4, al
    0xb0, 0x55, 0xe6, 0xf4,        // fail: mov al, 0x55; out 0xf4, al
};

// An ELF32 whose segment at 1 MiB starts with a Multiboot header; e_entry right after it.
std::string multiboot_image(const std::string& stem, std::uint32_t flags, const Code& code,
                            std::int32_t checksum_error = 0) {
  TestElf elf;
  elf.is64 = false;
  elf.pvh_note = false;
  elf.entry = 0x10000c;
  elf.segments.push_back({0x100000, multiboot_header(flags, checksum_error) + code, 0x1000});
  return write_temp_file(stem + ".elf", elf.build());
}

TEST(RunTest, MultibootImageGetsTheMagicAndTheInformation) {
  REQUIRE_KVM();
  const auto r = run_drvm({"run", multiboot_image("mb", 0x3, kExitWithMultibootFlags)});
  EXPECT_EQ(r.status, (0x4f << 1 | 1) & 0xff) << r.err;  // memory, boot device, cmdline, mods,
  EXPECT_EQ(r.err, "");                                  // mmap (0x4f of 0x24f)
}

// QEMU ignores a video mode request; drvm too, with one warning line.
TEST(RunTest, MultibootVideoModeRequestBootsWithAWarning) {
  REQUIRE_KVM();
  const auto path = multiboot_image("video", 0x7, kExitWithMultibootFlags);
  const auto r = run_drvm({"run", path});
  EXPECT_EQ(r.status, (0x4f << 1 | 1) & 0xff) << r.err;
  EXPECT_EQ(r.err, "drvm: warning: " + path +
                       ": its Multiboot header requests a video mode (flag 2); ignored as QEMU "
                       "does: drvm has no display and passes no video information\n");
}

// A flat binary (not ELF) at 2 MiB: the header's address fields load 0x70 bytes of the file and
// zero-fill to 0x3000; the code reads the byte at 0x70 (0xcc in the file) and exits with it.
TEST(RunTest, MultibootAoutKludgeHonoursLoadEndAndBssEnd) {
  REQUIRE_KVM();
  constexpr std::uint32_t kLoad = 0x200000;
  Code file =
      multiboot_header(0x10000, 0, {kLoad, kLoad, kLoad + 0x70, kLoad + 0x3000, kLoad + 32});
  file = file + Code{0xa0, 0x70, 0x00, 0x20, 0x00,  // mov al, [0x200070]
                     0x04, 0x11,                    // add al, 0x11
                     0xe6, 0xf4};                   // out 0xf4, al
  file.resize(0x80, 0xcc);
  std::vector<std::byte> bytes(file.size());
  std::memcpy(bytes.data(), file.data(), file.size());
  const auto r = run_drvm({"run", write_temp_file("kludge.bin", bytes)});
  EXPECT_EQ(r.status, (0x11 << 1 | 1)) << r.err;
}

// An image with both a PVH note and a Multiboot header boots by PVH, as in QEMU: EBX is the
// start_info (0x2000), not the Multiboot information (0xa000); the code exits with EBX >> 12.
TEST(RunTest, PvhWinsOverMultiboot) {
  REQUIRE_KVM();
  TestElf elf;
  elf.is64 = false;
  elf.pvh_note = true;
  elf.pvh_entry = 0x10000c;
  elf.entry = 0x10000c;
  elf.segments.push_back({0x100000,
                          multiboot_header(0x3) + Code{0x89, 0xd8,        // mov eax, ebx
                                                       0xc1, 0xe8, 0x0c,  // shr eax, 12
                                                       0xe6, 0xf4},       // out 0xf4, al
                          0x1000});
  const auto r = run_drvm({"run", write_temp_file("both.elf", elf.build())});
  EXPECT_EQ(r.status, (2 << 1 | 1)) << r.err;
}

// Refused before KVM is opened: one line each, status 2.
TEST(RunTest, BadMultibootImagesAndModulesAreRefusedWithOneLine) {
  std::vector<std::byte> bzimage(0x400);
  std::memcpy(bzimage.data() + 0x202, "HdrS", 4);
  const std::string pvh = image("pvhmod", exit_with(0));
  const std::string big = write_temp_file("big.bin", std::vector<std::byte>(3 << 20));
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  } cases[] = {
      {{multiboot_image("badsum", 0x3, exit_with(0), 1)}, "bad checksum"},
      {{multiboot_image("badflags", 0x3 | 0x20, exit_with(0))},
       "requires flag bit(s) 5 (flags 0x00000023), which drvm cannot honour"},
      {{write_temp_file("bz.img", bzimage)},
       "a Linux bzImage (boot protocol), which drvm does not boot; boot the kernel's vmlinux ELF "
       "built with CONFIG_PVH=y instead"},
      {{pvh, "--initrd", "/nonexistent/m.bin arg"},
       "--initrd: module /nonexistent/m.bin: No such file or directory; check the path"},
      {{pvh, "--mem", "2M", "--initrd", big},
       "bytes do not fit in guest RAM (2097152 bytes); raise --mem"},
      {{pvh, "--initrd", ","}, "names no file"},
      {{pvh, "--mem", "4M", "--initrd", big},
       "(3145728 bytes) does not fit in guest RAM: placed at 0x102000 after the image and the "
       "modules before it, it would end at 0x402000, past the 4194304 bytes of --mem; raise --mem "
       "to at least 5M"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto r = run_drvm(args);
    EXPECT_EQ(r.status, 2) << c.expected;
    EXPECT_EQ(r.err.rfind("drvm: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(RunTest, SegmentOutsideMemoryDependsOnMem) {
  REQUIRE_KVM();
  TestElf elf;
  elf.pvh_entry = 0x5000000;  // 80 MiB
  elf.segments.push_back({0x5000000, exit_with(0), 0x1000});
  const auto path = write_temp_file("high.elf", elf.build());
  const auto small = run_drvm({"run", path, "--mem", "64M"});
  EXPECT_EQ(small.status, 2);
  EXPECT_NE(small.err.find("outside guest memory"), std::string::npos) << small.err;
  EXPECT_EQ(run_drvm({"run", path, "--mem", "96M"}).status, 1);
}

TEST(RunTest, UsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"run"},
           {"run", "a.elf", "--bogus"},
           {"run", "a.elf", "--timeout"},
           {"run", "a.elf", "--timeout", "soon"},
           {"run", "a.elf", "--mem", "12Q"},
           {"run", "a.elf", "--mem", "1M"},
           {"run", "a.elf", "b.elf"},
       }) {
    const auto r = run_drvm(args);
    EXPECT_EQ(r.status, 2) << args.back();
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const auto help = run_drvm({"run", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--timeout"), std::string::npos);
}

TEST(RunTest, KvmDeviceFailuresAreSetupErrors) {
  const auto path = image("dev", exit_with(0));
  const auto missing = run_drvm({"run", path}, {"DRVM_KVM_DEVICE=/nonexistent/kvm"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("drvm: cannot open /nonexistent/kvm"), std::string::npos)
      << missing.err;
  const auto not_kvm = run_drvm({"run", path}, {"DRVM_KVM_DEVICE=/dev/null"});
  EXPECT_EQ(not_kvm.status, 2);
  EXPECT_NE(not_kvm.err.find("not a KVM device"), std::string::npos) << not_kvm.err;
}

// --- guestfw images (built into DRVM_GUEST_DIR by guestfw/) ---

DrvmResult run_guest(const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"run", guest(name)};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_drvm(args);
}

TEST(GuestfwTest, HelloPrintsBannerAndCmdline) {
  REQUIRE_KVM();
  const auto r = run_guest("hello.elf", {"--cmdline", "drvm-cmdline-probe"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_NE(r.out.find("drvm-cmdline-probe"), std::string::npos) << r.out;
}

TEST(GuestfwTest, HelloElf64BootsInLongMode) {
  REQUIRE_KVM();
  const auto r = run_guest("hello-elf64.elf");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST(GuestfwTest, HugeTimeoutMeansNoDeadline) {
  REQUIRE_KVM();
  // 1e300 s does not fit steady_clock: it must not turn into a deadline in the past.
  const auto r = run_guest("hello-elf64.elf", {"--timeout", "1e300"});
  EXPECT_EQ(r.status, 1) << r.err;
}

TEST(GuestfwTest, SelftestPasses) {
  REQUIRE_KVM();
  const auto r = run_guest("selftest.elf", {"--timeout", "60"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("summary: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" 0 failed"), std::string::npos) << r.out;
}

TEST(GuestfwTest, HaltImageHalts) {
  REQUIRE_KVM();
  const auto r = run_guest("halt.elf", {"--timeout", "30"});
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_NE(r.err.find("guest halted"), std::string::npos);
}

TEST(GuestfwTest, SpinImageTimesOut) {
  REQUIRE_KVM();
  const auto r = run_guest("spin.elf", {"--timeout", "0.5"});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_LT(r.seconds, 5.0);
}

TEST(GuestfwTest, TriplefaultImageIsReported) {
  REQUIRE_KVM();
  const auto r = run_guest("triplefault.elf", {"--timeout", "30"});
  EXPECT_EQ(r.status, 8) << r.err;
  EXPECT_NE(r.err.find("RIP="), std::string::npos);
  EXPECT_NE(r.err.find("code: 0x"), std::string::npos) << r.err;
}

TEST(GuestfwTest, IoportImageSeesAllOnes) {
  REQUIRE_KVM();
  const auto r = run_guest("ioport.elf", {"--trace-io", "--timeout", "30"});
  EXPECT_EQ(r.status % 2, 1) << r.err;
  EXPECT_NE(r.err.find("drvm: io: in "), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("ff"), std::string::npos) << r.out;
}

TEST(GuestfwTest, FaultImageDumpsFromInsideTheGuest) {
  REQUIRE_KVM();
  const auto r = run_guest("fault.elf", {"--timeout", "30"});
  EXPECT_EQ(r.status % 2, 1) << r.err;  // the guest's own handler reports and exits
  EXPECT_FALSE(r.out.empty());
}

}  // namespace
}  // namespace drvm::test
