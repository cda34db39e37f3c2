// The hardware engine: the host's four debug-address registers, handed to KVM with
// KVM_SET_GUEST_DEBUG (KVM_GUESTDBG_USE_HW_BP). The processor does the matching, so instruction
// breakpoints fault before the instruction and data breakpoints trap after it (SDM Vol. 3, 17.2.4
// and 17.3.1), each as one KVM_EXIT_DEBUG. One per vCPU: each vCPU has its own DR file.
//
// Invariant: a slot is armed here exactly when dr_of_slot[slot] >= 0; each of DR0-DR3 serves at
// most one slot, and the DR7 given to KVM enables exactly the armed DRs not suppressed for a step.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "bpcore/attributes.hpp"
#include "bpcore/dr_encoding.hpp"
#include "bpcore/types.hpp"
#include "vmm/probe/probe.hpp"

namespace drvm::vmm::debug {

class HardwareEngine {
 public:
  HardwareEngine() { disarm(); }

  // Whether the host's KVM delivers this kind of breakpoint from a hardware slot (the probe).
  static bool can_serve(const bp::BpAttr& attr, const ProbeResult& can);
  bool full() const { return used_ == bp::kX86HardwareSlots; }

  // Arms `slot` on the next free DR. False when the host cannot serve it or all four are taken.
  bool arm(unsigned slot, const bp::BpAttr& attr, const ProbeResult& can);
  void disarm();
  bool armed(unsigned slot) const { return dr_of_slot_[slot] >= 0; }
  int dr_of(unsigned slot) const { return dr_of_slot_[slot]; }

  // Adds the armed DRs to KVM's guest-debug request (USE_HW_BP when any), leaving out the
  // suppressed ones.
  void program(kvm_guest_debug& debug) const;

  // Claims a KVM_EXIT_DEBUG: the slots whose DR has its B0-B3 bit in `dr6` (suppressed DRs
  // excluded: KVM may report the stepped-over breakpoint's bit with the step).
  std::uint64_t slots_hit(std::uint64_t dr6) const;

  // drvm steps over the instruction an instruction breakpoint in `slots` sits on: its DR stays
  // quiet for that one step (the processor has RF for this; KVM gives userspace no RF control).
  void suppress_for_step(std::uint64_t slots);
  void end_step() { suppressed_ = 0; }
  std::uint8_t suppressed_drs() const { return suppressed_; }

 private:
  std::array<std::int8_t, bp::kMaxSlots> dr_of_slot_{};
  std::array<std::uint64_t, bp::kX86HardwareSlots> address_{};
  std::array<std::uint64_t, bp::kX86HardwareSlots> dr7_bits_{};
  unsigned used_ = 0;
  std::uint8_t suppressed_ = 0;  // DR indexes (bit n = DRn)
};

}  // namespace drvm::vmm::debug
