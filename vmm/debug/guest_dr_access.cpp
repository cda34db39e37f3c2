#include "vmm/debug/guest_dr_access.hpp"

#include <cstring>

#include "bpcore/dr_encoding.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {

DrEmulation GuestDrAccess::emulate(RegisterCache& registers, const DecodedMove& move) {
  kvm_regs regs = registers.regs();
  const bp::CpuMode mode = cpu_mode(registers.sregs());
  bp::DrAccessResult result;
  DrEmulation out;
  if (move.kind == ControlMove::kToDr) {
    std::uint64_t value = gpr(regs, move.gpr);
    if (!mode.long_mode) value &= 0xffffffffu;
    result = file_.mov_to_dr(move.special, value, mode);
    out.wrote = true;
    if (result.action == bp::DrAccessResult::Action::kOk) mirror();
  } else {
    result = file_.mov_from_dr(move.special, mode);
  }
  out.action = result.action;
  out.dr6 = result.dr6;
  if (result.action != bp::DrAccessResult::Action::kOk) return out;
  if (move.kind == ControlMove::kFromDr) {
    gpr(regs, move.gpr) = mode.long_mode ? result.value : (result.value & 0xffffffffu);
  }
  regs.rip += move.length;
  regs.rflags &= ~x86::kRflagsRf;
  registers.set_regs(regs);
  out.arm_error = result.arm_error;
  return out;
}

void GuestDrAccess::mirror() {
  const bp::GuestDebugRegs guest = file_.values();
  kvm_debugregs want = loaded_;
  for (unsigned i = 0; i < 4; ++i) want.db[i] = guest.dr[i];
  want.dr6 = guest.dr6;
  want.dr7 = guest.dr7 & ~(bp::dr7::kEnableBits | bp::dr7::kGd);
  if (std::memcmp(want.db, loaded_.db, sizeof want.db) == 0 && want.dr6 == loaded_.dr6 &&
      want.dr7 == loaded_.dr7) {
    return;
  }
  vcpu_.set_debugregs(want);
  loaded_ = want;
}

void GuestDrAccess::set_dr6(std::uint64_t dr6) {
  loaded_.dr6 = dr6;
  vcpu_.set_debugregs(loaded_);
}

UntrappedChange GuestDrAccess::check_untrapped() {
  const kvm_debugregs now = vcpu_.debugregs();
  const bool address_or_control =
      std::memcmp(now.db, loaded_.db, sizeof now.db) != 0 || now.dr7 != loaded_.dr7;
  if (!address_or_control && now.dr6 == loaded_.dr6) return {};
  bp::GuestDebugRegs regs = file_.values();
  if (address_or_control) {
    for (unsigned i = 0; i < 4; ++i) regs.dr[i] = now.db[i];
    regs.dr7 = now.dr7;
  }
  const bool delivered = now.dr6 != loaded_.dr6;  // KVM delivered a #DB itself (TF step)
  regs.dr6 = now.dr6;
  (void)file_.load(regs);
  // Entering the #DB handler cleared DR7.GD (SDM 17.2.4), which KVM's copy never holds.
  if (delivered) file_.deliver_db(now.dr6 & bp::dr6::kWritable);
  loaded_ = now;
  mirror();
  return UntrappedChange{true, address_or_control};
}

}  // namespace drvm::vmm::debug
