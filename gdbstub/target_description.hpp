#pragma once
// The target description gdb reads with qXfer:features:read (target.xml and the feature files
// it includes) and the register numbering it implies for g/G/p/P.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "gdbstub/debug_target.hpp"

namespace drvm::gdbstub {

struct RegisterInfo {
  std::string_view name;
  std::size_t size;    // bytes
  std::size_t offset;  // into Registers
};

// Every register in gdb's numbering (the order of the 'g' packet).
std::span<const RegisterInfo> register_layout();

// Total bytes of one 'g' packet (before hex encoding).
std::size_t register_file_size();

// The contents of one annex ("target.xml", "64bit-core.xml", ...), or nullopt if there is none.
std::optional<std::string_view> target_description_annex(std::string_view annex);

// Registers <-> the 'g' packet's bytes, in gdb's order and target (little-endian) byte order.
std::string serialize_registers(const Registers& registers);
void store_register_bytes(Registers& registers, std::size_t offset_in_file,
                          std::span<const std::uint8_t> bytes);

}  // namespace drvm::gdbstub
