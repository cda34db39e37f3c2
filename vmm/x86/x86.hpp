// Architectural bit positions and exception vectors (Intel SDM Vol. 3, 2.3-2.5 and 6.3) used
// across the VMM, in one place.
#pragma once

#include <cstdint>

namespace drvm::vmm::x86 {

inline constexpr std::uint64_t kRflagsFixed1 = 1u << 1;
inline constexpr std::uint64_t kRflagsZf = 1u << 6;
inline constexpr std::uint64_t kRflagsTf = 1u << 8;
inline constexpr std::uint64_t kRflagsIf = 1u << 9;
inline constexpr std::uint64_t kRflagsDf = 1u << 10;
inline constexpr std::uint64_t kRflagsNt = 1u << 14;
inline constexpr std::uint64_t kRflagsRf = 1u << 16;
inline constexpr std::uint64_t kRflagsVm = 1u << 17;

inline constexpr std::uint64_t kCr0Pe = 1u << 0;
inline constexpr std::uint64_t kCr0Mp = 1u << 1;
inline constexpr std::uint64_t kCr0Et = 1u << 4;
inline constexpr std::uint64_t kCr0Ne = 1u << 5;
inline constexpr std::uint64_t kCr0Wp = 1u << 16;
inline constexpr std::uint64_t kCr0Pg = 1u << 31;

inline constexpr std::uint64_t kCr4De = 1u << 3;
inline constexpr std::uint64_t kCr4Pae = 1u << 5;
inline constexpr std::uint64_t kCr4Osfxsr = 1u << 9;
inline constexpr std::uint64_t kCr4Osxmmexcpt = 1u << 10;

inline constexpr std::uint64_t kEferLme = 1u << 8;
inline constexpr std::uint64_t kEferLma = 1u << 10;

inline constexpr std::uint8_t kVectorDb = 1;
inline constexpr std::uint8_t kIcebp = 0xf1;  // ICEBP/INT1 opcode: a trap-like #DB
inline constexpr std::uint8_t kVectorBp = 3;
inline constexpr std::uint8_t kVectorUd = 6;
inline constexpr std::uint8_t kVectorNp = 11;
inline constexpr std::uint8_t kVectorGp = 13;

}  // namespace drvm::vmm::x86
