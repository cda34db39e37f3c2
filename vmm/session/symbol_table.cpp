#include "vmm/session/symbol_table.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <iterator>

namespace drvm::vmm::session {
namespace {

// An unsized label covers at most this much after it (beyond, the address is shown as a number).
constexpr std::uint64_t kLabelReach = 64 * 1024;
// How many lower symbols locate() looks through for one that contains the address.
constexpr std::size_t kContainerSearch = 64;

template <class T>
bool read_struct(std::span<const std::byte> bytes, std::uint64_t offset, T& out) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return false;
  std::memcpy(&out, bytes.data() + offset, sizeof(T));
  return true;
}

struct Elf64Types {
  using Ehdr = Elf64_Ehdr;
  using Shdr = Elf64_Shdr;
  using Sym = Elf64_Sym;
  static unsigned type(const Sym& sym) { return ELF64_ST_TYPE(sym.st_info); }
};
struct Elf32Types {
  using Ehdr = Elf32_Ehdr;
  using Shdr = Elf32_Shdr;
  using Sym = Elf32_Sym;
  static unsigned type(const Sym& sym) { return ELF32_ST_TYPE(sym.st_info); }
};

// Returns the problem, or an empty string.
template <class Types>
std::string read_symbols(std::span<const std::byte> elf, std::vector<Symbol>& out) {
  typename Types::Ehdr header;
  if (!read_struct(elf, 0, header)) return "the ELF header is truncated";
  if (header.e_shoff == 0 || header.e_shnum == 0) return "the image has no section headers";
  if (header.e_shentsize != sizeof(typename Types::Shdr)) return "unexpected section header size";
  auto section = [&](std::uint64_t index, typename Types::Shdr& shdr) {
    return index < header.e_shnum &&
           read_struct(elf, header.e_shoff + index * sizeof(typename Types::Shdr), shdr);
  };
  for (std::uint64_t i = 0; i < header.e_shnum; ++i) {
    typename Types::Shdr symtab;
    if (!section(i, symtab)) return "the section headers are truncated";
    if (symtab.sh_type != SHT_SYMTAB) continue;
    typename Types::Shdr strtab;
    if (!section(symtab.sh_link, strtab) || strtab.sh_offset > elf.size() ||
        elf.size() - strtab.sh_offset < strtab.sh_size) {
      return "the symbol string table is missing or truncated";
    }
    const char* names = reinterpret_cast<const char*>(elf.data() + strtab.sh_offset);
    const std::uint64_t count = symtab.sh_size / sizeof(typename Types::Sym);
    for (std::uint64_t s = 1; s < count; ++s) {
      typename Types::Sym sym;
      if (!read_struct(elf, symtab.sh_offset + s * sizeof(sym), sym)) {
        return "the symbol table is truncated";
      }
      const unsigned type = Types::type(sym);
      if ((type != STT_FUNC && type != STT_OBJECT && type != STT_NOTYPE) ||
          sym.st_shndx == SHN_UNDEF || sym.st_name >= strtab.sh_size) {
        continue;
      }
      const char* name = names + sym.st_name;
      const std::size_t length = strnlen(name, strtab.sh_size - sym.st_name);
      if (length == 0) continue;
      out.push_back(Symbol{std::string(name, length), sym.st_value, sym.st_size});
    }
    return {};
  }
  return "the image has no symbol table (was it stripped?)";
}

}  // namespace

SymbolTable SymbolTable::from_elf(std::span<const std::byte> elf) {
  SymbolTable table;
  if (elf.size() < EI_NIDENT || std::memcmp(elf.data(), ELFMAG, SELFMAG) != 0) {
    table.problem_ = "the image is not an ELF file";
    return table;
  }
  const auto elf_class = static_cast<unsigned char>(elf[EI_CLASS]);
  if (elf_class == ELFCLASS64) {
    table.problem_ = read_symbols<Elf64Types>(elf, table.symbols_);
  } else if (elf_class == ELFCLASS32) {
    table.problem_ = read_symbols<Elf32Types>(elf, table.symbols_);
  } else {
    table.problem_ = "unknown ELF class";
  }
  if (table.symbols_.empty() && table.problem_.empty()) {
    table.problem_ = "its symbol table has no functions or objects";
  }
  // Address order; at one address sized symbols first, then by name, so output is stable.
  std::sort(table.symbols_.begin(), table.symbols_.end(), [](const Symbol& a, const Symbol& b) {
    if (a.address != b.address) return a.address < b.address;
    if ((a.size == 0) != (b.size == 0)) return a.size != 0;
    return a.name < b.name;
  });
  return table;
}

std::vector<const Symbol*> SymbolTable::find(std::string_view name) const {
  std::vector<const Symbol*> found;
  for (const Symbol& symbol : symbols_) {
    if (symbol.name == name) found.push_back(&symbol);
  }
  return found;
}

std::optional<SymbolTable::Location> SymbolTable::locate(std::uint64_t address) const {
  auto above = std::upper_bound(
      symbols_.begin(), symbols_.end(), address,
      [](std::uint64_t value, const Symbol& symbol) { return value < symbol.address; });
  if (above == symbols_.begin()) return std::nullopt;
  // The nearest lower symbol wins if it covers the address; otherwise an enclosing sized one
  // further down (a function around an unsized or smaller inner symbol).
  const auto nearest = std::prev(above);
  const std::uint64_t nearest_offset = address - nearest->address;
  if (nearest->size == 0 ? nearest_offset < kLabelReach : nearest_offset < nearest->size) {
    // Prefer a sized symbol at the same address (sorted first) over a label.
    auto first_at = nearest;
    while (first_at != symbols_.begin() && std::prev(first_at)->address == nearest->address) {
      --first_at;
    }
    const auto chosen = first_at->size == 0 || nearest_offset < first_at->size ? first_at : nearest;
    return Location{&*chosen, nearest_offset};
  }
  auto candidate = nearest;
  for (std::size_t looked = 0; candidate != symbols_.begin() && looked < kContainerSearch;
       ++looked) {
    --candidate;
    if (candidate->size != 0 && address - candidate->address < candidate->size) {
      return Location{&*candidate, address - candidate->address};
    }
  }
  return std::nullopt;
}

void SymbolTable::append_address(fmt::memory_buffer& out, std::uint64_t address) const {
  const std::optional<Location> location = locate(address);
  if (!location) {
    fmt::format_to(std::back_inserter(out), "{:#x}", address);
  } else if (location->offset == 0) {
    out.append(location->symbol->name);
  } else {
    fmt::format_to(std::back_inserter(out), "{}+{:#x}", location->symbol->name, location->offset);
  }
}

std::string SymbolTable::describe(std::uint64_t address) const {
  fmt::memory_buffer out;
  append_address(out, address);
  return fmt::to_string(out);
}

}  // namespace drvm::vmm::session
