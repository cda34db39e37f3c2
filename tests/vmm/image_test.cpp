// Unit tests of ELF parsing and loading: good images and every refusal.
#include <gtest/gtest.h>

#include "elf_builder.hpp"
#include "vmm/boot_layout.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/image.hpp"

namespace drvm::vmm {
namespace {

using test::TestElf;

TestElf pvh_image() {
  TestElf elf;
  elf.is64 = true;
  elf.pvh_entry = 0x100000;
  elf.entry = 0x100040;
  elf.segments.push_back({0x100000, {0xfa, 0xf4}, 0x3000});
  return elf;
}

std::string refusal(const std::vector<std::byte>& bytes, std::uint64_t mem = 16 << 20) {
  try {
    const BootImage image = parse_image(bytes, "img.elf");
    GuestMemory memory(mem);
    load_image(image, memory);
  } catch (const ImageError& error) {
    return error.what();
  }
  return "";
}

TEST(ImageTest, PvhNoteGivesProtectedModeEntry) {
  const BootImage image = parse_image(pvh_image().build(), "img.elf");
  EXPECT_EQ(image.mode, EntryMode::kPvh32);
  EXPECT_EQ(image.entry, 0x100000u);
  ASSERT_EQ(image.segments.size(), 1u);
  EXPECT_EQ(image.segments[0].mem_size, 0x3000u);
}

TEST(ImageTest, Elf64WithoutNoteEntersLongModeAtEntry) {
  TestElf elf = pvh_image();
  elf.pvh_note = false;
  const BootImage image = parse_image(elf.build(), "img.elf");
  EXPECT_EQ(image.mode, EntryMode::kLong64);
  EXPECT_EQ(image.entry, 0x100040u);
}

TEST(ImageTest, Elf32WithNoteIsPvh) {
  TestElf elf = pvh_image();
  elf.is64 = false;
  EXPECT_EQ(parse_image(elf.build(), "img.elf").mode, EntryMode::kPvh32);
}

TEST(ImageTest, NoteScanStopsAtTheEndOfTheNoteArea) {
  // The file ends inside the padding of its last note: the scanner must stop there rather than
  // read past the end of the file (the sanitizer build catches the overread).
  std::vector<std::byte> bytes = pvh_image().build();
  const std::uint32_t note[] = {4, 1, 1};  // "Xen", a 1-byte descriptor, not the PVH type
  const std::size_t note_offset = bytes.size();
  bytes.resize(note_offset + sizeof note + 4 + 1);
  std::memcpy(bytes.data() + note_offset, note, sizeof note);
  std::memcpy(bytes.data() + note_offset + sizeof note, "Xen", 4);
  Elf64_Phdr phdr{};
  std::memcpy(&phdr, bytes.data() + sizeof(Elf64_Ehdr), sizeof phdr);
  ASSERT_EQ(phdr.p_type, static_cast<Elf64_Word>(PT_NOTE));
  phdr.p_offset = note_offset;
  phdr.p_filesz = bytes.size() - note_offset;
  std::memcpy(bytes.data() + sizeof(Elf64_Ehdr), &phdr, sizeof phdr);
  const BootImage image = parse_image(bytes, "img.elf");
  EXPECT_EQ(image.mode, EntryMode::kLong64);
}

TEST(ImageTest, LoadCopiesSegmentAndZeroesBss) {
  const BootImage image = parse_image(pvh_image().build(), "img.elf");
  GuestMemory memory(16 << 20);
  std::memset(memory.host(0x100000, 0x3000), 0xaa, 0x3000);
  load_image(image, memory);
  EXPECT_EQ(std::to_integer<int>(*memory.host(0x100000)), 0xfa);
  EXPECT_EQ(std::to_integer<int>(*memory.host(0x100001)), 0xf4);
  EXPECT_EQ(std::to_integer<int>(*memory.host(0x100002)), 0);
  EXPECT_EQ(std::to_integer<int>(*memory.host(0x102fff)), 0);
}

TEST(ImageTest, RefusesNonElf) {
  std::vector<std::byte> junk(200, std::byte{'x'});
  EXPECT_NE(refusal(junk).find("not an ELF file"), std::string::npos);
  EXPECT_NE(refusal({}).find("not an ELF file"), std::string::npos);
}

TEST(ImageTest, RefusesTruncatedHeader) {
  auto bytes = pvh_image().build();
  bytes.resize(40);
  EXPECT_NE(refusal(bytes).find("truncated ELF header"), std::string::npos);
}

TEST(ImageTest, RefusesTruncatedProgramHeaders) {
  auto bytes = pvh_image().build();
  bytes.resize(sizeof(Elf64_Ehdr) + 10);
  EXPECT_NE(refusal(bytes).find("program header table"), std::string::npos);
}

TEST(ImageTest, RefusesTruncatedSegment) {
  auto bytes = pvh_image().build();
  bytes.pop_back();
  EXPECT_NE(refusal(bytes).find("truncated: segment"), std::string::npos);
}

TEST(ImageTest, RefusesWrongMachine) {
  TestElf elf = pvh_image();
  elf.machine = EM_AARCH64;
  EXPECT_NE(refusal(elf.build()).find("ELF machine"), std::string::npos);
  TestElf mismatched = pvh_image();
  mismatched.is64 = false;
  mismatched.machine = EM_X86_64;  // 32-bit class with the 64-bit machine
  EXPECT_NE(refusal(mismatched.build()).find("expected EM_386"), std::string::npos);
}

TEST(ImageTest, RefusesElf32WithoutPvhNote) {
  TestElf elf = pvh_image();
  elf.is64 = false;
  elf.pvh_note = false;
  EXPECT_NE(refusal(elf.build()).find("32-bit ELF without a PVH entry note"), std::string::npos);
}

TEST(ImageTest, RefusesImageWithoutLoadSegment) {
  TestElf elf = pvh_image();
  elf.segments.clear();
  EXPECT_NE(refusal(elf.build()).find("no loadable"), std::string::npos);
}

TEST(ImageTest, RefusesSegmentOutsideMemory) {
  TestElf elf = pvh_image();
  elf.segments[0].gpa = 0x2000000;  // 32 MiB in a 16 MiB guest
  EXPECT_NE(refusal(elf.build()).find("outside guest memory"), std::string::npos);
  TestElf straddling = pvh_image();
  straddling.segments[0].gpa = (16 << 20) - 0x1000;  // bss runs past the end
  EXPECT_NE(refusal(straddling.build()).find("outside guest memory"), std::string::npos);
}

TEST(ImageTest, RefusesSegmentOverlappingBootArea) {
  TestElf elf = pvh_image();
  elf.segments[0].gpa = layout::kStartInfo;
  EXPECT_NE(refusal(elf.build()).find("overlaps drvm's boot structures"), std::string::npos);
}

TEST(ImageTest, RefusesFileSizeLargerThanMemSize) {
  TestElf elf = pvh_image();
  elf.segments[0].bytes.assign(0x20, 0x90);
  elf.segments[0].mem_size = 0x10;
  EXPECT_NE(refusal(elf.build()).find("file size larger"), std::string::npos);
}

TEST(ImageTest, RefusesMissingFile) {
  try {
    read_image("/nonexistent/drvm-image.elf");
    FAIL() << "no error";
  } catch (const ImageError& error) {
    EXPECT_NE(std::string(error.what()).find("No such file"), std::string::npos);
  }
}

TEST(ImageTest, RefusesDirectory) {
  try {
    read_image("/");
    FAIL() << "no error";
  } catch (const ImageError& error) {
    EXPECT_NE(std::string(error.what()).find("not a regular file"), std::string::npos);
  }
}

}  // namespace
}  // namespace drvm::vmm
