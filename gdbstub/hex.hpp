#pragma once
// Hex text as the remote protocol uses it: numbers (most significant digit first) and byte
// strings (two digits per byte, in memory order).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace drvm::gdbstub {

// A hex number of 1..16 digits; nullopt for empty, non-hex or 64-bit overflow.
std::optional<std::uint64_t> parse_hex_number(std::string_view text);

// Two hex digits per byte; nullopt for odd length or non-hex characters.
std::optional<std::vector<std::uint8_t>> decode_hex_bytes(std::string_view text);

void append_hex_bytes(std::string& out, std::span<const std::uint8_t> bytes);
std::string encode_hex_bytes(std::span<const std::uint8_t> bytes);
std::string encode_hex_text(std::string_view text);

}  // namespace drvm::gdbstub
