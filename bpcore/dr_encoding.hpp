// x86 debug-register encoding (Intel SDM Vol. 3, 17.2): DR6 status bits, DR7 per-slot enable,
// R/W and LEN fields, and the values the architecture reads back.
#pragma once

#include <cstdint>

#include "bpcore/attributes.hpp"

namespace drvm::bp {

/// Hardware breakpoint slots on x86 (DR0-DR3); the default slot count of a manager.
inline constexpr std::uint32_t kX86HardwareSlots = 4;

namespace dr6 {
/// B0-B3: breakpoint condition n was met.
constexpr std::uint64_t b(unsigned n) {
  return std::uint64_t{1} << n;
}
inline constexpr std::uint64_t kTrapBits = 0xf;               ///< B0-B3
inline constexpr std::uint64_t kBd = std::uint64_t{1} << 13;  ///< debug-register access detected
inline constexpr std::uint64_t kBs = std::uint64_t{1} << 14;  ///< single step
inline constexpr std::uint64_t kBt = std::uint64_t{1} << 15;  ///< task switch
/// Bits that read as 1 whatever was written: 4-11 (11 is BLD, active low, no bus-lock detect),
/// 16 (RTM, active low, no RTM) and 17-31. Bit 12 and bits 63..32 read as 0.
inline constexpr std::uint64_t kFixedOnes = 0xffff0ff0;
/// Bits a MOV to DR6 can change: B0-B3, BD, BS, BT.
inline constexpr std::uint64_t kWritable = kTrapBits | kBd | kBs | kBt;
/// DR6 as the guest reads it after reset or after writing 0.
inline constexpr std::uint64_t kInit = kFixedOnes;
/// The architectural read-back value of DR6 for `raw` (fixed bits applied, upper half cleared).
constexpr std::uint64_t read_value(std::uint64_t raw) {
  return (raw & kWritable) | kFixedOnes;
}
/// Active-low bits that become writable with a CPU feature (SDM 17.2.3): RTM (bit 16) with
/// CPUID.(EAX=7,ECX=0):EBX.RTM, BLD (bit 11) with bus-lock detection (ECX bit 24). A #DB sets
/// them (no transaction, no bus lock).
inline constexpr std::uint64_t kRtm = std::uint64_t{1} << 16;
inline constexpr std::uint64_t kBld = std::uint64_t{1} << 11;
}  // namespace dr6

namespace dr7 {
/// Ln: local enable of slot n.
constexpr std::uint64_t l(unsigned n) {
  return std::uint64_t{1} << (2 * n);
}
/// Gn: global enable of slot n.
constexpr std::uint64_t g(unsigned n) {
  return std::uint64_t{1} << (2 * n + 1);
}
/// L0-L3 and G0-G3.
inline constexpr std::uint64_t kEnableBits = 0xff;
inline constexpr std::uint64_t kLe = std::uint64_t{1} << 8;
inline constexpr std::uint64_t kGe = std::uint64_t{1} << 9;
/// Bit 10 always reads as 1.
inline constexpr std::uint64_t kFixedOne = std::uint64_t{1} << 10;
inline constexpr std::uint64_t kGd = std::uint64_t{1} << 13;  ///< general detect
/// Bits a MOV to DR7 can change: 0-9, 13 (GD), 16-31. Bits 11, 12, 14, 15 read as 0.
inline constexpr std::uint64_t kWritable = 0xffff23ff;
/// DR7 as the guest reads it after reset.
inline constexpr std::uint64_t kInit = kFixedOne;
constexpr std::uint64_t read_value(std::uint64_t raw) {
  return (raw & kWritable) | kFixedOne;
}
constexpr unsigned rw_shift(unsigned n) {
  return 16 + 4 * n;
}
constexpr unsigned len_shift(unsigned n) {
  return 18 + 4 * n;
}
/// All DR7 bits that belong to slot n (Ln, Gn, R/Wn, LENn).
constexpr std::uint64_t slot_mask(unsigned n) {
  return l(n) | g(n) | (std::uint64_t{0xf} << rw_shift(n));
}
}  // namespace dr7

/// The R/W field of DR7.
enum class DrRw : std::uint8_t {
  kExecute = 0,    ///< 00: instruction execution
  kWrite = 1,      ///< 01: data writes
  kIo = 2,         ///< 10: I/O reads and writes (CR4.DE = 1), undefined otherwise
  kReadWrite = 3,  ///< 11: data reads and writes
};

/// The LEN field for a length of 1, 2, 4 or 8 bytes (01b = 2, 11b = 4, 10b = 8 in 64-bit mode).
constexpr std::uint8_t encode_len(std::uint32_t bytes) {
  switch (bytes) {
    case 2:
      return 0b01;
    case 4:
      return 0b11;
    case 8:
      return 0b10;
    default:
      return 0b00;
  }
}
/// Bytes covered by a LEN field value (0..3).
constexpr std::uint32_t decode_len(std::uint8_t bits) {
  constexpr std::uint32_t kBytes[4] = {1, 2, 8, 4};
  return kBytes[bits & 3];
}

/// The R/W value programmed for `type`. Read-only watchpoints become read/write (see
/// needs_read_filter()).
constexpr DrRw encode_rw(BpType type) {
  switch (type) {
    case BpType::kExecute:
      return DrRw::kExecute;
    case BpType::kWrite:
      return DrRw::kWrite;
    default:
      return DrRw::kReadWrite;
  }
}

/// DR7 bits that enable slot `n` (< 4) globally with the R/W and LEN of `attr`.
constexpr std::uint64_t encode_dr7_slot(unsigned n, const BpAttr& attr) {
  return dr7::g(n) |
         (std::uint64_t{static_cast<std::uint8_t>(encode_rw(attr.type))} << dr7::rw_shift(n)) |
         (std::uint64_t{encode_len(attr.len)} << dr7::len_shift(n));
}

/// One slot of a DR7 value, decoded.
struct Dr7Slot {
  bool local = false;
  bool global = false;
  DrRw rw = DrRw::kExecute;
  std::uint8_t len_bits = 0;
  bool enabled() const { return local || global; }
  std::uint32_t len_bytes() const { return decode_len(len_bits); }
};
constexpr Dr7Slot decode_dr7_slot(std::uint64_t dr7_value, unsigned n) {
  return {(dr7_value & dr7::l(n)) != 0, (dr7_value & dr7::g(n)) != 0,
          static_cast<DrRw>((dr7_value >> dr7::rw_shift(n)) & 3),
          static_cast<std::uint8_t>((dr7_value >> dr7::len_shift(n)) & 3)};
}

/// The hit mask (bit n = slot n) for the B0-B3 bits of a physical DR6.
constexpr std::uint64_t slot_mask_from_dr6(std::uint64_t dr6_value) {
  return dr6_value & dr6::kTrapBits;
}

}  // namespace drvm::bp
