// Breakpoint attributes (address, length, type), their validation and access matching.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bpcore/result.hpp"

namespace drvm::bp {

/// What a breakpoint triggers on. The values are flag-like (as perf's bp_type): read = 1,
/// write = 2, read/write = 3, execute = 4; any other value is Error::kUnknownType.
enum class BpType : std::uint8_t {
  kRead = 1,
  kWrite = 2,
  kReadWrite = 3,
  kExecute = 4,
};

/// The kind of access an engine observed.
enum class Access : std::uint8_t { kRead, kWrite, kExecute };

/// A breakpoint request: `len` bytes at `addr` (a guest linear address).
struct BpAttr {
  std::uint64_t addr = 0;
  std::uint32_t len = 1;
  BpType type = BpType::kExecute;

  friend bool operator==(const BpAttr&, const BpAttr&) = default;
};

/// True when bits 63..47 of `addr` are all equal (48-bit linear addresses).
constexpr bool is_canonical(std::uint64_t addr) {
  const std::uint64_t top = addr >> 47;
  return top == 0 || top == (std::uint64_t{1} << 17) - 1;
}

/// Checks `attr`, in this order: type, length, execute length, canonical address, alignment.
Result<void> validate(const BpAttr& attr);

/// True for read and read/write watchpoints and write watchpoints (everything but execute).
constexpr bool is_data(BpType type) {
  return type != BpType::kExecute;
}

/// Read-only watchpoints: x86 has no read-only condition, so the slot is encoded read/write and
/// the engine must drop hits caused by writes.
constexpr bool needs_read_filter(BpType type) {
  return type == BpType::kRead;
}

/// Whether an access of `size` bytes (>= 1) at `addr` of kind `access` triggers `attr`
/// (which must be valid). Data breakpoints match when any accessed byte lies in
/// [attr.addr, attr.addr + attr.len), as the SDM specifies; a read-only watchpoint ignores
/// writes. Instruction breakpoints match an execute access whose first byte is attr.addr.
constexpr bool matches(const BpAttr& attr, std::uint64_t addr, std::uint32_t size, Access access) {
  if (access == Access::kExecute) return attr.type == BpType::kExecute && addr == attr.addr;
  const bool type_ok = access == Access::kWrite
                           ? (attr.type == BpType::kWrite || attr.type == BpType::kReadWrite)
                           : (attr.type == BpType::kRead || attr.type == BpType::kReadWrite);
  if (!type_ok || size == 0) return false;
  // Compare inclusive ends so ranges touching the top of the address space do not wrap.
  const std::uint64_t access_last = addr + (size - 1);
  const std::uint64_t bp_last = attr.addr + (attr.len - 1);
  if (access_last < addr) return bp_last >= addr || attr.addr <= access_last;  // wraps past 2^64
  return addr <= bp_last && attr.addr <= access_last;
}

// Splits [address, address + length) into naturally aligned pieces of 1, 2, 4 or 8 bytes, the
// shapes a debug-register slot can watch. Empty for length 0 or a range that wraps, and also when
// the range needs more than `max_pieces` pieces: that is decided from the length before any work,
// so a client's length field never costs more than max_pieces pieces.
std::vector<BpAttr> watch_pieces(std::uint64_t address, std::uint64_t length, BpType type,
                                 std::size_t max_pieces);

}  // namespace drvm::bp
