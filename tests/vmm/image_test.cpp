// Unit tests of ELF parsing and loading: good images and every refusal.
#include <gtest/gtest.h>

#include "elf_builder.hpp"
#include "vmm/boot/boot_layout.hpp"
#include "vmm/boot/image.hpp"
#include "vmm/debug/site_scanner.hpp"
#include "vmm/kvm/guest_memory.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>

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
  EXPECT_NE(refusal(junk).find("neither an ELF file nor a Multiboot image"), std::string::npos);
  EXPECT_NE(refusal({}).find("neither an ELF file nor a Multiboot image"), std::string::npos);
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
  EXPECT_NE(refusal(elf.build()).find("32-bit ELF with neither a PVH entry note"),
            std::string::npos);
}

TEST(ImageTest, RefusesImageWithoutLoadSegment) {
  TestElf elf = pvh_image();
  elf.segments.clear();
  EXPECT_NE(refusal(elf.build()).find("no loadable"), std::string::npos);
}

TEST(ImageTest, RefusesSegmentOutsideMemory) {
  TestElf elf = pvh_image();
  elf.segments[0].gpa = elf.pvh_entry = 0x2000000;  // 32 MiB in a 16 MiB guest
  EXPECT_NE(refusal(elf.build()).find("outside guest memory"), std::string::npos);
  TestElf straddling = pvh_image();
  straddling.segments[0].gpa = straddling.pvh_entry = (16 << 20) - 0x1000;  // bss runs past
  EXPECT_NE(refusal(straddling.build()).find("outside guest memory"), std::string::npos);
}

TEST(ImageTest, RefusesSegmentOverlappingBootArea) {
  TestElf elf = pvh_image();
  elf.segments[0].gpa = elf.pvh_entry = layout::kStartInfo;
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

TEST(ImageTest, RefusesElf64EntryOutsideEverySegment) {
  TestElf elf = pvh_image();
  elf.pvh_note = false;
  elf.entry = 0x200000;  // the segment is 0x100000-0x103000
  EXPECT_EQ(refusal(elf.build()),
            "cannot boot img.elf: ELF entry point (e_entry) 0x200000 lies outside every loadable "
            "segment; check the image's entry symbol and linker script");
  elf.entry = 0x102fff;  // the last byte of the segment (its bss) is still the image's
  EXPECT_EQ(refusal(elf.build()), "");
}

TEST(ImageTest, RefusesPvhEntryOutsideEverySegment) {
  TestElf elf = pvh_image();
  elf.pvh_entry = 0x103000;
  EXPECT_NE(refusal(elf.build()).find("PVH entry 0x103000 lies outside every loadable segment"),
            std::string::npos);
}

TEST(ImageTest, RefusesMalformedPvhNoteNamingIt) {
  auto bytes = pvh_image().build();
  // The note's descsz (second word of the note at the start of the note area) runs past the area.
  Elf64_Phdr phdr{};
  std::memcpy(&phdr, bytes.data() + sizeof(Elf64_Ehdr), sizeof phdr);
  const std::uint32_t huge = 0x1000;
  std::memcpy(bytes.data() + phdr.p_offset + 4, &huge, sizeof huge);
  const std::string error = refusal(bytes);
  EXPECT_NE(error.find("malformed PVH entry (Xen type 18) note at file offset 0x"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("in the note segment (program header 0)"), std::string::npos) << error;
}

// Fuzz: damaged images are refused with one line or load; never a crash, overread or big
// allocation (the sanitizer build checks the reads).
TEST(ImageTest, RandomlyDamagedImagesAreRefusedOrLoad) {
  std::mt19937 random(14);
  const auto good = pvh_image().build();
  for (int i = 0; i < 20000; ++i) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(random() % 8);
    for (int f = 0; f < flips; ++f) {
      bytes[random() % bytes.size()] = static_cast<std::byte>(random());
    }
    if (random() % 4 == 0) bytes.resize(random() % bytes.size());
    try {
      const BootImage image = parse_image(bytes, "img.elf", 16 << 20);
      EXPECT_LE(image.bytes.size(), bytes.size() + 64);  // never more than the file holds
    } catch (const ImageError& error) {
      EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos);
    }
  }
}

class ImageFileTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }
  std::filesystem::path path_ = std::filesystem::temp_directory_path() /
                                ("drvm-image-test-" + std::to_string(::getpid()) + ".elf");
};

// A small valid image at the start of a 64 GiB sparse file: only the image's bytes are read
// (reading the file whole cost 4 GB per 4 GiB and ended in bad_alloc at 64 GiB).
TEST_F(ImageFileTest, HugeSparseFileCostsOnlyTheImage) {
  const auto bytes = pvh_image().build();
  {
    std::ofstream out(path_, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::resize_file(path_, std::uintmax_t{64} << 30);
  const auto start = std::chrono::steady_clock::now();
  const BootImage image = read_image(path_.string(), 16 << 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_LE(image.bytes.size(), bytes.size());
  GuestMemory memory(16 << 20);
  load_image(image, memory);
  EXPECT_EQ(std::to_integer<int>(*memory.host(0x100000)), 0xfa);
  EXPECT_EQ(std::to_integer<int>(*memory.host(0x100001)), 0xf4);
  // The debug layer's scanner still finds the executable segment in the compact bytes.
  const auto code = debug::scan_image_code(image);
  ASSERT_EQ(code.ranges.size(), 1u);
  EXPECT_EQ(code.ranges[0], (std::pair<std::uint64_t, std::uint64_t>{0x100000, 2}));
}

TEST_F(ImageFileTest, SegmentLargerThanGuestMemoryIsRefusedBeforeReading) {
  auto bytes = pvh_image().build();
  Elf64_Phdr phdr{};
  const std::size_t at = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);  // after the note's header
  std::memcpy(&phdr, bytes.data() + at, sizeof phdr);
  ASSERT_EQ(phdr.p_type, static_cast<Elf64_Word>(PT_LOAD));
  phdr.p_filesz = phdr.p_memsz = std::uint64_t{32} << 30;
  std::memcpy(bytes.data() + at, &phdr, sizeof phdr);
  {
    std::ofstream out(path_, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::resize_file(path_, std::uintmax_t{64} << 30);
  try {
    read_image(path_.string(), 128 << 20);
    FAIL() << "no error";
  } catch (const ImageError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("segment 1 (0x800000000 bytes) does not fit in guest memory (0x8000000 "
                        "bytes)"),
              std::string::npos)
        << error.what();
  }
}

TEST_F(ImageFileTest, FifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo(path_.c_str(), 0600), 0);
  std::signal(SIGALRM, SIG_DFL);
  ::alarm(10);  // open() without O_NONBLOCK waits for a writer forever
  try {
    read_image(path_.string());
    ADD_FAILURE() << "no error";
  } catch (const ImageError& error) {
    EXPECT_NE(std::string(error.what()).find("not a regular file"), std::string::npos);
  }
  ::alarm(0);
}

}  // namespace
}  // namespace drvm::vmm
