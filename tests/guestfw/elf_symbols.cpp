#include "elf_symbols.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace drvm::test {
namespace {

template <typename T>
bool read_at(const std::vector<char>& file, std::uint64_t offset, T& value) {
  if (offset > file.size() || file.size() - offset < sizeof(T)) return false;
  std::memcpy(&value, file.data() + offset, sizeof(T));
  return true;
}

}  // namespace

std::optional<std::uint64_t> elf_symbol_address(const std::string& path, std::string_view name) {
  std::ifstream stream(path, std::ios::binary);
  const std::vector<char> file((std::istreambuf_iterator<char>(stream)),
                               std::istreambuf_iterator<char>());
  Elf64_Ehdr header;
  if (!read_at(file, 0, header) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
      header.e_ident[EI_CLASS] != ELFCLASS64) {
    return std::nullopt;
  }
  for (unsigned i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr symbols;
    if (!read_at(file, header.e_shoff + std::uint64_t{i} * header.e_shentsize, symbols)) break;
    if (symbols.sh_type != SHT_SYMTAB || symbols.sh_entsize < sizeof(Elf64_Sym)) continue;
    Elf64_Shdr strings;
    if (!read_at(file, header.e_shoff + std::uint64_t{symbols.sh_link} * header.e_shentsize,
                 strings)) {
      return std::nullopt;
    }
    for (std::uint64_t offset = 0; offset + sizeof(Elf64_Sym) <= symbols.sh_size;
         offset += symbols.sh_entsize) {
      Elf64_Sym symbol;
      if (!read_at(file, symbols.sh_offset + offset, symbol)) return std::nullopt;
      const std::uint64_t name_offset = strings.sh_offset + symbol.st_name;
      if (symbol.st_name >= strings.sh_size || name_offset >= file.size()) continue;
      const char* symbol_name = file.data() + name_offset;
      const std::size_t max_length =
          std::min<std::uint64_t>(strings.sh_size - symbol.st_name, file.size() - name_offset);
      if (std::string_view(symbol_name, strnlen(symbol_name, max_length)) == name) {
        return symbol.st_value;
      }
    }
  }
  return std::nullopt;
}

}  // namespace drvm::test
