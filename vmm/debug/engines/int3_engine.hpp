// The INT3 engine: an instruction breakpoint the hardware slots cannot take becomes an INT3
// planted over the first byte of its instruction (TrapSites, VM-wide: memory is shared). Reaching
// it exits to drvm (a #BP exit with KVM_GUESTDBG_USE_SW_BP, or an emulation failure where KVM
// cannot intercept #BP), fault-like as the processor's instruction breakpoint; running the
// instruction then means lifting the byte for one drvm step over it. One per vCPU.
//
// Invariant: every slot this vCPU armed here holds one breakpoint reference on its site, dropped
// by disarm(); at most one site is lifted for this vCPU, and it is planted again when its step
// ends (replant()).
#pragma once

#include <array>
#include <cstdint>

#include "bpcore/types.hpp"
#include "vmm/debug/engines/engine.hpp"
#include "vmm/debug/engines/trap_sites.hpp"
#include "vmm/debug/site_scanner.hpp"

namespace drvm::vmm::debug {

class Int3Engine {
 public:
  Int3Engine(TrapSites& sites, const ImageCode& code) : sites_(sites), code_(code) {
    site_of_slot_.fill(kNoAddress);
  }

  // Plants the breakpoint of `slot` at `gpa`. False where an INT3 would land inside an
  // instruction (the processor never reports a breakpoint there: left unarmed).
  bool arm(unsigned slot, std::uint64_t gpa);
  void disarm();
  bool armed(unsigned slot) const { return site_of_slot_[slot] != kNoAddress; }

  // A drvm step runs the instruction under the site at `gpa`: its original byte is back for it.
  void lift(std::uint64_t gpa);
  // The step ended: the lifted site gets its INT3 again.
  void replant();
  bool lifted() const { return lifted_ != kNoAddress; }

 private:
  TrapSites& sites_;
  const ImageCode& code_;
  std::array<std::uint64_t, bp::kMaxSlots> site_of_slot_{};
  std::uint64_t lifted_ = kNoAddress;
};

}  // namespace drvm::vmm::debug
