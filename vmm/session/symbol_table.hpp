// The image's ELF symbol table (.symtab with its string table): names to addresses and sizes for
// `--event mem:SYMBOL`, and addresses back to "symbol+0xoff" for traces (RIPs and data alike).
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace drvm::vmm::session {

struct Symbol {
  std::string name;
  std::uint64_t address = 0;  // st_value: the linear address the image is linked at
  std::uint64_t size = 0;     // st_size; 0 for assembly labels without .size
};

class SymbolTable {
 public:
  SymbolTable() = default;
  // Reads the functions, objects and untyped labels of `elf` (ELF32 or ELF64, little endian).
  // A missing or malformed symbol table gives an empty table; problem() says why.
  static SymbolTable from_elf(std::span<const std::byte> elf);

  bool empty() const { return symbols_.empty(); }
  const std::string& problem() const { return problem_; }
  // Every symbol named `name`, in address order (more than one for same-named local statics).
  std::vector<const Symbol*> find(std::string_view name) const;

  struct Location {
    const Symbol* symbol = nullptr;
    std::uint64_t offset = 0;
  };
  // The nearest symbol at or below `address` that contains it (or an unsized label); nullopt when
  // none does. Allocation-free (the hit path uses it).
  std::optional<Location> locate(std::uint64_t address) const;
  // "name", "name+0x1a", or "0x102000" when no symbol covers the address.
  void append_address(fmt::memory_buffer& out, std::uint64_t address) const;
  std::string describe(std::uint64_t address) const;

 private:
  std::vector<Symbol> symbols_;  // sorted by address
  std::string problem_;
};

}  // namespace drvm::vmm::session
