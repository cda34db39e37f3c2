// Builds small ELF images in memory for the loader and run tests: 32- or 64-bit, optional PVH
// note, any number of PT_LOAD segments. Tests then damage them on purpose.
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace drvm::test {

struct TestSegment {
  std::uint64_t gpa;
  std::vector<std::uint8_t> bytes;
  std::uint64_t mem_size = 0;  // 0: same as bytes.size()
};

struct TestElf {
  bool is64 = true;
  unsigned machine = 0;  // 0: the right one for the class
  std::uint64_t entry = 0;
  bool pvh_note = true;
  std::uint64_t pvh_entry = 0;
  std::vector<TestSegment> segments;

  std::vector<std::byte> build() const {
    std::vector<std::uint8_t> note;
    if (pvh_note) {
      auto put32 = [&note](std::uint32_t v) {
        for (int i = 0; i < 4; ++i) note.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
      };
      put32(4);
      put32(4);
      put32(18);  // XEN_ELFNOTE_PHYS32_ENTRY
      for (char c : std::string("Xen", 4)) note.push_back(static_cast<std::uint8_t>(c));
      put32(static_cast<std::uint32_t>(pvh_entry));
    }
    const std::size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    const std::size_t phentsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    const std::size_t phnum = segments.size() + (pvh_note ? 1 : 0);
    std::size_t offset = ehsize + phnum * phentsize;
    std::vector<std::uint8_t> out(offset);
    std::vector<std::size_t> offsets;
    const std::size_t note_offset = offset;
    out.insert(out.end(), note.begin(), note.end());
    offset += note.size();
    for (const auto& segment : segments) {
      offsets.push_back(offset);
      out.insert(out.end(), segment.bytes.begin(), segment.bytes.end());
      offset += segment.bytes.size();
    }
    auto write = [&out](std::size_t at, const auto& value) {
      std::memcpy(out.data() + at, &value, sizeof value);
    };
    unsigned char ident[EI_NIDENT] = {ELFMAG0,
                                      ELFMAG1,
                                      ELFMAG2,
                                      ELFMAG3,
                                      static_cast<unsigned char>(is64 ? ELFCLASS64 : ELFCLASS32),
                                      ELFDATA2LSB,
                                      EV_CURRENT};
    const unsigned elf_machine = machine != 0 ? machine : (is64 ? EM_X86_64 : EM_386);
    if (is64) {
      Elf64_Ehdr h{};
      std::memcpy(h.e_ident, ident, EI_NIDENT);
      h.e_type = ET_EXEC;
      h.e_machine = static_cast<Elf64_Half>(elf_machine);
      h.e_version = EV_CURRENT;
      h.e_entry = entry;
      h.e_phoff = ehsize;
      h.e_ehsize = static_cast<Elf64_Half>(ehsize);
      h.e_phentsize = static_cast<Elf64_Half>(phentsize);
      h.e_phnum = static_cast<Elf64_Half>(phnum);
      write(0, h);
    } else {
      Elf32_Ehdr h{};
      std::memcpy(h.e_ident, ident, EI_NIDENT);
      h.e_type = ET_EXEC;
      h.e_machine = static_cast<Elf32_Half>(elf_machine);
      h.e_version = EV_CURRENT;
      h.e_entry = static_cast<Elf32_Addr>(entry);
      h.e_phoff = static_cast<Elf32_Off>(ehsize);
      h.e_ehsize = static_cast<Elf32_Half>(ehsize);
      h.e_phentsize = static_cast<Elf32_Half>(phentsize);
      h.e_phnum = static_cast<Elf32_Half>(phnum);
      write(0, h);
    }
    std::size_t at = ehsize;
    auto header = [&](std::uint32_t type, std::uint64_t file_offset, std::uint64_t filesz,
                      std::uint64_t gpa, std::uint64_t memsz) {
      if (is64) {
        Elf64_Phdr p{};
        p.p_type = type;
        p.p_offset = file_offset;
        p.p_vaddr = p.p_paddr = gpa;
        p.p_filesz = filesz;
        p.p_memsz = memsz;
        p.p_flags = PF_R | PF_W | PF_X;
        p.p_align = type == PT_NOTE ? 4 : 0x1000;
        write(at, p);
      } else {
        Elf32_Phdr p{};
        p.p_type = type;
        p.p_offset = static_cast<Elf32_Off>(file_offset);
        p.p_vaddr = p.p_paddr = static_cast<Elf32_Addr>(gpa);
        p.p_filesz = static_cast<Elf32_Word>(filesz);
        p.p_memsz = static_cast<Elf32_Word>(memsz);
        p.p_flags = PF_R | PF_W | PF_X;
        p.p_align = type == PT_NOTE ? 4 : 0x1000;
        write(at, p);
      }
      at += phentsize;
    };
    if (pvh_note) header(PT_NOTE, note_offset, note.size(), 0, 0);
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const auto& s = segments[i];
      header(PT_LOAD, offsets[i], s.bytes.size(), s.gpa,
             s.mem_size != 0 ? s.mem_size : s.bytes.size());
    }
    std::vector<std::byte> bytes(out.size());
    std::memcpy(bytes.data(), out.data(), out.size());
    return bytes;
  }
};

}  // namespace drvm::test
