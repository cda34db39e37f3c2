#include "vmm/debug/engines/hardware_engine.hpp"

#include "bpcore/dr_encoding.hpp"

namespace drvm::vmm::debug {

bool HardwareEngine::can_serve(const bp::BpAttr& attr, const ProbeResult& can) {
  switch (attr.type) {
    case bp::BpType::kExecute:
      return can.hw_insn_bp.yes();
    case bp::BpType::kWrite:
      return can.hw_data_bp_write.yes();
    default:
      return can.hw_data_bp_rw.yes();
  }
}

bool HardwareEngine::arm(unsigned slot, const bp::BpAttr& attr, const ProbeResult& can) {
  if (full() || !can_serve(attr, can)) return false;
  dr_of_slot_[slot] = static_cast<std::int8_t>(used_);
  address_[used_] = attr.addr;
  dr7_bits_[used_] = bp::encode_dr7_slot(used_, attr);
  ++used_;
  return true;
}

void HardwareEngine::disarm() {
  dr_of_slot_.fill(-1);
  address_.fill(0);
  dr7_bits_.fill(0);
  used_ = 0;
  // suppressed_ stays: a step over a breakpoint may be under way across a re-arm (end_step()).
}

void HardwareEngine::program(kvm_guest_debug& debug) const {
  if (used_ == 0) return;
  debug.control |= KVM_GUESTDBG_USE_HW_BP;
  for (unsigned n = 0; n < used_; ++n) {
    debug.arch.debugreg[n] = address_[n];
    if (!(suppressed_ & (1u << n))) debug.arch.debugreg[7] |= dr7_bits_[n];
  }
}

std::uint64_t HardwareEngine::slots_hit(std::uint64_t dr6) const {
  const std::uint64_t fired = dr6 & bp::dr6::kTrapBits & ~std::uint64_t{suppressed_};
  std::uint64_t slots = 0;
  for (unsigned slot = 0; slot < bp::kMaxSlots; ++slot) {
    if (dr_of_slot_[slot] >= 0 && (fired & (1u << dr_of_slot_[slot]))) {
      slots |= std::uint64_t{1} << slot;
    }
  }
  return slots;
}

void HardwareEngine::suppress_for_step(std::uint64_t slots) {
  for (unsigned slot = 0; slot < bp::kMaxSlots; ++slot) {
    if ((slots >> slot & 1) && dr_of_slot_[slot] >= 0) {
      suppressed_ |= static_cast<std::uint8_t>(1u << dr_of_slot_[slot]);
    }
  }
}

}  // namespace drvm::vmm::debug
