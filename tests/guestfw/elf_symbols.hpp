// Looks up a symbol's address in an ELF64 file: lets tests predict the exact addresses a guest
// image prints (RIP, RSP, CR3 in a register dump) without hard-coding its layout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace drvm::test {

// Nothing when the file is unreadable, not ELF64 or has no such symbol.
std::optional<std::uint64_t> elf_symbol_address(const std::string& path, std::string_view name);

}  // namespace drvm::test
