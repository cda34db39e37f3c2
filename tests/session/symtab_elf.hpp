// Builds a minimal ELF (header, .symtab, .strtab, section headers) with chosen symbols, so the
// symbol and planning tests control sizes, aliases and odd cases exactly.
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace drvm::test {

struct TestSymbol {
  std::string name;
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  unsigned type = STT_OBJECT;
  std::uint16_t section = 1;  // SHN_UNDEF (0) for undefined symbols
};

template <class Ehdr, class Shdr, class Sym, unsigned char kClass>
std::vector<std::byte> build_symtab_elf_as(const std::vector<TestSymbol>& symbols) {
  std::string strtab(1, '\0');
  std::vector<Sym> syms(1);  // index 0: the null symbol
  for (const TestSymbol& symbol : symbols) {
    Sym sym{};
    sym.st_name = static_cast<decltype(sym.st_name)>(strtab.size());
    strtab += symbol.name + '\0';
    sym.st_value = static_cast<decltype(sym.st_value)>(symbol.address);
    sym.st_size = static_cast<decltype(sym.st_size)>(symbol.size);
    sym.st_info = static_cast<unsigned char>((STB_GLOBAL << 4) | symbol.type);
    sym.st_shndx = symbol.section;
    syms.push_back(sym);
  }
  const std::size_t symtab_offset = sizeof(Ehdr);
  const std::size_t symtab_size = syms.size() * sizeof(Sym);
  const std::size_t strtab_offset = symtab_offset + symtab_size;
  const std::size_t shoff = (strtab_offset + strtab.size() + 7) & ~std::size_t{7};
  std::vector<std::byte> out(shoff + 3 * sizeof(Shdr));

  Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = kClass;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_ident[EI_VERSION] = EV_CURRENT;
  header.e_type = ET_EXEC;
  header.e_machine = kClass == ELFCLASS64 ? EM_X86_64 : EM_386;
  header.e_version = EV_CURRENT;
  header.e_shoff = shoff;
  header.e_ehsize = sizeof(Ehdr);
  header.e_shentsize = sizeof(Shdr);
  header.e_shnum = 3;
  std::memcpy(out.data(), &header, sizeof header);
  std::memcpy(out.data() + symtab_offset, syms.data(), symtab_size);
  std::memcpy(out.data() + strtab_offset, strtab.data(), strtab.size());

  Shdr sections[3]{};
  sections[1].sh_type = SHT_SYMTAB;
  sections[1].sh_offset = symtab_offset;
  sections[1].sh_size = symtab_size;
  sections[1].sh_link = 2;
  sections[1].sh_entsize = sizeof(Sym);
  sections[2].sh_type = SHT_STRTAB;
  sections[2].sh_offset = strtab_offset;
  sections[2].sh_size = strtab.size();
  std::memcpy(out.data() + shoff, sections, sizeof sections);
  return out;
}

inline std::vector<std::byte> build_symtab_elf64(const std::vector<TestSymbol>& symbols) {
  return build_symtab_elf_as<Elf64_Ehdr, Elf64_Shdr, Elf64_Sym, ELFCLASS64>(symbols);
}
inline std::vector<std::byte> build_symtab_elf32(const std::vector<TestSymbol>& symbols) {
  return build_symtab_elf_as<Elf32_Ehdr, Elf32_Shdr, Elf32_Sym, ELFCLASS32>(symbols);
}

}  // namespace drvm::test
