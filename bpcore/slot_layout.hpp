// How a vCPU's slots are split into pools: one mixed pool (x86: instruction and data
// breakpoints share DR0-DR3) or separate instruction and data pools.
#pragma once

#include <cstdint>

#include "bpcore/attributes.hpp"
#include "bpcore/dr_encoding.hpp"

namespace drvm::bp {

/// Index of a slot pool: always 0 in a mixed layout; 0 (instruction) or 1 (data) when separate.
using PoolIndex = std::uint32_t;

class SlotLayout {
 public:
  /// One pool of `slots` slots shared by every breakpoint type (x86 hardware: 4).
  static constexpr SlotLayout mixed(std::uint32_t slots = kX86HardwareSlots) {
    return SlotLayout(slots, 0);
  }
  /// An instruction pool (slots 0 .. inst-1) and a data pool (slots inst .. inst+data-1).
  static constexpr SlotLayout separate(std::uint32_t inst, std::uint32_t data) {
    return SlotLayout(inst, data);
  }

  bool is_mixed() const { return data_ == 0; }
  std::uint32_t pool_count() const { return is_mixed() ? 1 : 2; }
  PoolIndex pool_of(BpType type) const { return is_mixed() || !is_data(type) ? 0 : 1; }
  std::uint32_t pool_size(PoolIndex pool) const { return pool == 0 ? first_ : data_; }
  std::uint32_t first_slot(PoolIndex pool) const { return pool == 0 ? 0 : first_; }
  std::uint32_t total_slots() const { return first_ + data_; }
  /// Every pool has at least one slot and the total fits a 64-bit slot mask.
  bool valid() const { return first_ >= 1 && total_slots() <= 64; }
  /// This (host) layout with `guest` more slots in every pool for the guest's breakpoints.
  SlotLayout with_guest_slots(std::uint32_t guest) const {
    return is_mixed() ? SlotLayout(first_ + guest, 0) : SlotLayout(first_ + guest, data_ + guest);
  }

 private:
  constexpr SlotLayout(std::uint32_t first, std::uint32_t data) : first_(first), data_(data) {}
  std::uint32_t first_;  // mixed: all slots; separate: instruction slots
  std::uint32_t data_;   // 0 when mixed
};

}  // namespace drvm::bp
