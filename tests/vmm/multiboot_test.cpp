// Unit tests of Multiboot v1 loading: the header scan, the formats parse_image tells apart (PVH
// before Multiboot before ELF64, the a.out kludge, bzImage and unknown files), the Multiboot
// information and module lists write_boot_structures builds, and --initrd's parsing and placement.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "elf_builder.hpp"
#include "vmm/boot/boot.hpp"
#include "vmm/boot/boot_layout.hpp"
#include "vmm/boot/boot_modules.hpp"
#include "vmm/boot/image.hpp"
#include "vmm/boot/multiboot.hpp"
#include "vmm/kvm/guest_memory.hpp"

namespace drvm::vmm {
namespace {

using test::TestElf;
using Bytes = std::vector<std::uint8_t>;

void put32(Bytes& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// A Multiboot header; with address fields when flags has bit 16.
Bytes multiboot_header(std::uint32_t flags, std::uint32_t checksum_error = 0,
                       std::vector<std::uint32_t> address_fields = {}) {
  Bytes out;
  put32(out, kMultibootHeaderMagic);
  put32(out, flags);
  put32(out, static_cast<std::uint32_t>(0 - kMultibootHeaderMagic - flags) + checksum_error);
  for (std::uint32_t field : address_fields) put32(out, field);
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::byte> as_bytes(const Bytes& in) {
  std::vector<std::byte> out(in.size());
  std::memcpy(out.data(), in.data(), in.size());
  return out;
}

const Bytes kHalt = {0xfa, 0xf4};  // cli; hlt

// An ELF whose only segment (at 1 MiB) starts with a Multiboot header; entry just after it.
TestElf multiboot_elf(bool is64, std::uint32_t flags = 0x3, std::uint32_t checksum_error = 0) {
  TestElf elf;
  elf.is64 = is64;
  elf.pvh_note = false;
  elf.entry = 0x10000c;
  elf.segments.push_back({0x100000, multiboot_header(flags, checksum_error) + kHalt, 0x2000});
  return elf;
}

std::string refusal(const std::vector<std::byte>& bytes) {
  try {
    parse_image(bytes, "img");
  } catch (const ImageError& error) {
    return error.what();
  }
  return "";
}

TEST(MultibootScanTest, FindsTheFirstValidHeaderAtA32BitBoundary) {
  const Bytes file = Bytes(6, 0) + multiboot_header(0x3) + Bytes(2, 0) + multiboot_header(0x3);
  // The first magic is at offset 6 (not aligned): the aligned one at 20 counts.
  const MultibootScan scan = scan_multiboot_header(as_bytes(file));
  ASSERT_TRUE(scan.header);
  EXPECT_EQ(scan.header->file_offset, 20u);
  EXPECT_EQ(scan.header->flags, 0x3u);
  EXPECT_TRUE(scan.problem.empty());
}

TEST(MultibootScanTest, IgnoresAHeaderPastTheFirst8KiB) {
  const Bytes file = Bytes(8192, 0) + multiboot_header(0x3);
  EXPECT_FALSE(scan_multiboot_header(as_bytes(file)).header);
  const Bytes inside = Bytes(8192 - 12, 0) + multiboot_header(0x3);
  EXPECT_TRUE(scan_multiboot_header(as_bytes(inside)).header);
}

TEST(MultibootScanTest, BadChecksumIsAProblemUnlessALaterHeaderIsValid) {
  const MultibootScan bad = scan_multiboot_header(as_bytes(multiboot_header(0x3, 1)));
  EXPECT_FALSE(bad.header);
  EXPECT_NE(bad.problem.find("bad checksum"), std::string::npos) << bad.problem;
  const MultibootScan later =
      scan_multiboot_header(as_bytes(multiboot_header(0x3, 1) + multiboot_header(0x1)));
  ASSERT_TRUE(later.header);
  EXPECT_EQ(later.header->file_offset, 12u);
  EXPECT_TRUE(later.problem.empty());
}

TEST(MultibootScanTest, RequiredFlagsDrvmCannotHonourAreAProblem) {
  const MultibootScan scan = scan_multiboot_header(as_bytes(multiboot_header(0x3 | 0x8 | 0x100)));
  EXPECT_FALSE(scan.header);
  EXPECT_NE(scan.problem.find("bit(s) 3, 8"), std::string::npos) << scan.problem;
  // Optional bits (16-31) other than 16 are fine.
  EXPECT_TRUE(scan_multiboot_header(as_bytes(multiboot_header(0x3 | 0x80000000u))).header);
}

TEST(MultibootImageTest, Elf32WithHeaderEntersAtElfEntry) {
  const BootImage image = parse_image(multiboot_elf(false).build(), "img");
  EXPECT_EQ(image.mode, EntryMode::kMultiboot32);
  EXPECT_EQ(image.entry, 0x10000cu);
  EXPECT_TRUE(image.warnings.empty());
}

TEST(MultibootImageTest, Elf64WithHeaderIsMultibootNotLongMode) {
  EXPECT_EQ(parse_image(multiboot_elf(true).build(), "img").mode, EntryMode::kMultiboot32);
}

TEST(MultibootImageTest, PvhNoteWinsOverMultibootHeader) {
  TestElf elf = multiboot_elf(false);
  elf.pvh_note = true;
  elf.pvh_entry = 0x10000c;
  const BootImage image = parse_image(elf.build(), "img");
  EXPECT_EQ(image.mode, EntryMode::kPvh32);
  // Even a broken Multiboot header does not matter then.
  TestElf broken = multiboot_elf(false, 0x3, 1);
  broken.pvh_note = true;
  broken.pvh_entry = 0x10000c;
  EXPECT_EQ(parse_image(broken.build(), "img").mode, EntryMode::kPvh32);
}

TEST(MultibootImageTest, BadHeadersAreRefusedInOneLine) {
  const std::string checksum = refusal(multiboot_elf(false, 0x3, 5).build());
  EXPECT_NE(checksum.find("cannot boot img: Multiboot header at file offset"), std::string::npos);
  EXPECT_NE(checksum.find("bad checksum"), std::string::npos) << checksum;
  EXPECT_NE(checksum.find("; set the checksum"), std::string::npos) << checksum;
  const std::string flags = refusal(multiboot_elf(false, 0x3 | 0x10).build());
  EXPECT_NE(flags.find("requires flag bit(s) 4"), std::string::npos) << flags;
  for (const std::string& message : {checksum, flags}) {
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
}

TEST(MultibootImageTest, VideoModeRequestIsIgnoredWithAWarning) {
  const BootImage image = parse_image(multiboot_elf(false, 0x7).build(), "img");
  EXPECT_EQ(image.mode, EntryMode::kMultiboot32);
  ASSERT_EQ(image.warnings.size(), 1u);
  EXPECT_NE(image.warnings[0].find("requests a video mode (flag 2); ignored as QEMU does"),
            std::string::npos);
}

// A flat binary loaded at 2 MiB: 0x40 bytes of padding, the header at file offset 0x40, code.
TEST(MultibootImageTest, AoutKludgeLoadsTheFileRangeTheFieldsGive) {
  constexpr std::uint32_t kLoad = 0x200000;
  Bytes file(0x40, 0x90);
  file = file + multiboot_header(0x10003, 0,
                                 {kLoad + 0x40, kLoad, kLoad + 0x70, kLoad + 0x3000, kLoad + 0x60});
  file.resize(0x60, 0x90);
  file = file + kHalt;
  file.resize(0x80, 0xcc);  // loaded up to load_end_addr (0x70), the rest not
  const BootImage image = parse_image(as_bytes(file), "img.bin");
  EXPECT_EQ(image.mode, EntryMode::kMultiboot32);
  EXPECT_EQ(image.entry, kLoad + 0x60);
  ASSERT_EQ(image.segments.size(), 1u);
  EXPECT_EQ(image.segments[0].gpa, kLoad);
  EXPECT_EQ(image.segments[0].file_size, 0x70u);
  EXPECT_EQ(image.segments[0].mem_size, 0x3000u);
  // The bytes are wrapped in an ELF for the symbol and code readers.
  ASSERT_GE(image.bytes.size(), 4u);
  EXPECT_EQ(std::memcmp(image.bytes.data(), ELFMAG, SELFMAG), 0);

  GuestMemory memory(16 << 20);
  std::memset(memory.host(kLoad, 0x3000), 0xee, 0x3000);
  load_image(image, memory);
  EXPECT_EQ(std::memcmp(memory.host(kLoad + 0x60, 2), kHalt.data(), 2), 0);
  EXPECT_EQ(*memory.host(kLoad + 0x6f, 1), std::byte{0xcc});
  EXPECT_EQ(*memory.host(kLoad + 0x70, 1), std::byte{0});  // bss zeroed, not the file's 0xcc
  EXPECT_EQ(*memory.host(kLoad + 0x2fff, 1), std::byte{0});
  EXPECT_EQ(image_end_page(image), kLoad + 0x3000);
}

TEST(MultibootImageTest, AoutKludgeZeroEndsMeanTheWholeFile) {
  constexpr std::uint32_t kLoad = 0x100000;
  Bytes file = multiboot_header(0x10002, 0, {kLoad, kLoad, 0, 0, kLoad + 32}) + kHalt;
  file.resize(100, 0);
  const BootImage image = parse_image(as_bytes(file), "img.bin");
  ASSERT_EQ(image.segments.size(), 1u);
  EXPECT_EQ(image.segments[0].file_size, 100u);
  EXPECT_EQ(image.segments[0].mem_size, 100u);
}

TEST(MultibootImageTest, AoutKludgeFieldsAreChecked) {
  constexpr std::uint32_t kLoad = 0x100000;
  auto kludge = [](std::vector<std::uint32_t> fields) {
    Bytes file = multiboot_header(0x10000, 0, fields) + kHalt;
    file.resize(64, 0);
    return refusal(as_bytes(file));
  };
  EXPECT_NE(kludge({kLoad, kLoad, kLoad + 64, 0, kLoad + 64}).find("entry_addr"),
            std::string::npos);
  EXPECT_NE(kludge({kLoad, kLoad + 4, kLoad + 64, 0, kLoad + 8}).find("below its load_addr"),
            std::string::npos);
  EXPECT_NE(kludge({kLoad, kLoad, kLoad + 4096, 0, kLoad}).find("truncated"), std::string::npos);
  EXPECT_NE(kludge({kLoad, kLoad, kLoad + 64, kLoad + 8, kLoad}).find("bss_end_addr"),
            std::string::npos);
  // Without flag 16 a file that is not ELF cannot say where it loads.
  EXPECT_NE(refusal(as_bytes(multiboot_header(0x3) + kHalt)).find("no address fields (flag 16)"),
            std::string::npos);
}

TEST(MultibootImageTest, BzImageAndUnknownFilesNameWhatDrvmBoots) {
  Bytes bz(0x400, 0);
  std::memcpy(bz.data() + 0x202, "HdrS", 4);
  const std::string bzimage = refusal(as_bytes(bz));
  EXPECT_NE(bzimage.find("Linux bzImage"), std::string::npos) << bzimage;
  EXPECT_NE(bzimage.find("vmlinux ELF built with CONFIG_PVH=y"), std::string::npos) << bzimage;
  const std::string junk = refusal(as_bytes(Bytes(100, 0x41)));
  EXPECT_NE(junk.find("neither an ELF file nor a Multiboot image"), std::string::npos) << junk;
  EXPECT_NE(junk.find("PVH ELF, ELF64 and Multiboot v1"), std::string::npos) << junk;
}

BootModule module(const std::string& cmdline, std::size_t size, std::uint8_t fill) {
  BootModule out;
  out.cmdline = cmdline;
  out.path = cmdline.substr(0, cmdline.find(' '));
  out.data.assign(size, std::byte{fill});
  return out;
}

template <typename T>
T read(GuestMemory& memory, std::uint64_t gpa) {
  T value;
  std::memcpy(&value, memory.host(gpa, sizeof value), sizeof value);
  return value;
}

std::string read_string(GuestMemory& memory, std::uint64_t gpa) {
  return std::string(reinterpret_cast<const char*>(memory.host(gpa, 1)));
}

TEST(MultibootInfoTest, EveryFieldMatchesWhatDrvmGivesTheGuest) {
  constexpr std::uint64_t kMem = 16 << 20;
  GuestMemory memory(kMem);
  const BootImage image = parse_image(multiboot_elf(false).build(), "kernel.elf");
  load_image(image, memory);
  const std::vector<BootModule> modules = {module("a.bin arg1 arg2", 5000, 0xaa),
                                           module("b.bin", 3, 0xbb)};
  write_boot_structures(memory, image, "console=ttyS0 x=1", modules);

  const auto info = read<MultibootInfo>(memory, layout::kMultibootInfo);
  EXPECT_EQ(info.flags, 0x24fu);  // memory, boot device, cmdline, modules, mmap, loader name
  EXPECT_EQ(info.mem_lower, 640u);
  EXPECT_EQ(info.mem_upper, (kMem - 0x100000) / 1024);
  EXPECT_EQ(info.boot_device, 0x8000ffffu);
  EXPECT_EQ(read_string(memory, info.cmdline), "kernel.elf console=ttyS0 x=1");
  EXPECT_EQ(read_string(memory, info.boot_loader_name), "drvm");

  const auto map = boot_memory_map(kMem);
  ASSERT_EQ(info.mmap_length, map.size() * 24);
  for (std::size_t i = 0; i < map.size(); ++i) {
    const auto entry = read<MultibootMmapEntry>(memory, info.mmap_addr + i * 24);
    EXPECT_EQ(entry.size, 20u);
    // Copied out: the packed entry's 64-bit fields are not 8-byte aligned (no reference to them).
    const std::uint64_t addr = entry.addr, len = entry.len;
    EXPECT_EQ(addr, map[i].addr);
    EXPECT_EQ(len, map[i].size);
    EXPECT_EQ(entry.type, map[i].type);
  }

  // The module list right after the image's last page (0x102000), the modules page-aligned.
  ASSERT_EQ(info.mods_count, 2u);
  EXPECT_EQ(info.mods_addr, 0x102000u);
  const auto a = read<MultibootModule>(memory, info.mods_addr);
  const auto b = read<MultibootModule>(memory, info.mods_addr + 16);
  EXPECT_EQ(a.mod_start, 0x103000u);
  EXPECT_EQ(a.mod_end, 0x103000u + 5000);
  EXPECT_EQ(b.mod_start, 0x105000u);
  EXPECT_EQ(b.mod_end, 0x105003u);
  EXPECT_EQ(read_string(memory, a.string), "a.bin arg1 arg2");
  EXPECT_EQ(read_string(memory, b.string), "b.bin");
  EXPECT_EQ(*memory.host(a.mod_end - 1, 1), std::byte{0xaa});
  EXPECT_EQ(*memory.host(b.mod_start, 1), std::byte{0xbb});

  const InitialCpuState state = initial_cpu_state(image.mode, image.entry, kvm_sregs{});
  EXPECT_EQ(state.regs.rax, 0x2badb002u);
  EXPECT_EQ(state.regs.rbx, layout::kMultibootInfo);
  EXPECT_EQ(state.regs.rip, 0x10000cu);
  EXPECT_EQ(state.regs.rflags, 0x2u);              // IF and VM clear
  EXPECT_EQ(state.sregs.cr0 & 0x80000001u, 0x1u);  // PE on, PG off
  EXPECT_EQ(state.sregs.cs.db, 1);
  EXPECT_EQ(state.sregs.cs.limit, 0xffffffffu);
  EXPECT_EQ(state.sregs.ds.limit, 0xffffffffu);
  EXPECT_EQ(state.sregs.ss.base, 0u);
}

TEST(MultibootInfoTest, PvhImagesGetTheModulesInStartInfo) {
  GuestMemory memory(16 << 20);
  TestElf elf = multiboot_elf(true);
  elf.pvh_note = true;
  elf.pvh_entry = 0x10000c;
  const BootImage image = parse_image(elf.build(), "kernel.elf");
  load_image(image, memory);
  write_boot_structures(memory, image, "", std::vector{module("m.bin x", 10, 0x11)});
  const auto info = read<HvmStartInfo>(memory, layout::kStartInfo);
  ASSERT_EQ(info.nr_modules, 1u);
  const auto entry = read<HvmModlistEntry>(memory, info.modlist_paddr);
  EXPECT_EQ(entry.paddr % 4096, 0u);
  EXPECT_GE(entry.paddr, image_end_page(image));
  EXPECT_EQ(entry.size, 10u);
  EXPECT_EQ(read_string(memory, entry.cmdline_paddr), "m.bin x");
  EXPECT_EQ(*memory.host(entry.paddr + 9, 1), std::byte{0x11});
  // Without modules the list stays empty.
  write_boot_structures(memory, image, "", {});
  EXPECT_EQ(read<HvmStartInfo>(memory, layout::kStartInfo).nr_modules, 0u);
}

TEST(BootModulesTest, InitrdSplitsAsQemuDoes) {
  EXPECT_EQ(split_initrd_option("a.bin arg1,b.bin"),
            (std::vector<std::string>{"a.bin arg1", "b.bin"}));
  EXPECT_EQ(split_initrd_option("a,,b.bin"), (std::vector<std::string>{"a,b.bin"}));
  EXPECT_EQ(split_initrd_option("one"), (std::vector<std::string>{"one"}));
}

TEST(BootModulesTest, AModuleThatDoesNotFitNamesItselfAndTheFix) {
  const std::vector<BootModule> modules = {module("small.bin", 100, 1),
                                           module("big.bin", 3 << 20, 2)};
  try {
    place_modules(modules, 0x100000, 4 << 20);
    FAIL() << "big.bin fits";
  } catch (const SetupError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("--initrd: module big.bin (3145728 bytes) does not fit in guest RAM"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("raise --mem to at least 5M"), std::string::npos) << message;
  }
  EXPECT_EQ(place_modules(modules, 0x100001, 8 << 20),
            (std::vector<std::uint64_t>{0x101000, 0x102000}));
}

TEST(BootModulesTest, MissingModuleFileIsNamed) {
  try {
    read_boot_module("/nonexistent/mod.bin arg", 1 << 20);
    FAIL() << "read a missing file";
  } catch (const SetupError& error) {
    EXPECT_STREQ(error.what(),
                 "--initrd: module /nonexistent/mod.bin: No such file or directory; check the "
                 "path");
  }
}

}  // namespace
}  // namespace drvm::vmm
