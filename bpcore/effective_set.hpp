// The scheduler's output for one vCPU: what is on each slot, and the DR values for slots 0-3.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "bpcore/attributes.hpp"
#include "bpcore/dr_encoding.hpp"
#include "bpcore/types.hpp"

namespace drvm::bp {

struct EffectiveSet {
  /// DR0-DR3 for hardware slots 0-3 (0 when free).
  std::array<std::uint64_t, kX86HardwareSlots> dr{};
  /// DR7 for hardware slots 0-3: Gn, R/Wn and LENn of each used slot, plus GE when any is used.
  std::uint64_t dr7 = 0;
  /// The event on each of the N slots (an invalid EventId when free).
  std::array<EventId, kMaxSlots> slot_event{};
  /// The attributes armed on each used slot (what software engines match against).
  std::array<BpAttr, kMaxSlots> slot_attr{};
  /// Bit n set when slot n is used.
  std::uint64_t used_mask = 0;
  /// Bit n set when slot n holds a read-only watchpoint: it is encoded read/write, so the
  /// engine must drop hits caused by writes.
  std::uint64_t read_filter_mask = 0;
  /// Incremented each time any field above changes, so the VMM can skip reprogramming.
  std::uint64_t generation = 0;

  /// The used slots among `candidates` that an access of `size` bytes at `addr` of kind `access`
  /// triggers (matches()): what a software engine reports for one access it observed.
  std::uint64_t slots_matching(std::uint64_t candidates, std::uint64_t addr, std::uint32_t size,
                               Access access) const {
    std::uint64_t hit = 0;
    for (std::uint64_t m = candidates & used_mask; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      if (matches(slot_attr[slot], addr, size, access)) hit |= std::uint64_t{1} << slot;
    }
    return hit;
  }
};

}  // namespace drvm::bp
