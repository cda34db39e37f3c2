// The guest's debug-register accesses, in one place: its MOV DR instructions, emulated against its
// virtual DR file (bp::GuestDrFile, bpcore's ptrace-like client of the breakpoint manager), the
// mirror of that file in KVM's own guest DRs, and the safety net that notices when KVM's DRs
// changed behind drvm's back (a MOV DR drvm did not trap, or a #DB KVM delivered itself). One per
// vCPU.
//
// Invariant: after mirror(), KVM's DR0-DR3 and DR6 hold the guest's values and its DR7 the guest's
// without the enables and GD (KVM must never arm or check them: the engines do); `loaded_` is
// what KVM holds.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>

#include "bpcore/guest_dr_file.hpp"
#include "bpcore/result.hpp"
#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/debug/register_cache.hpp"
#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm::debug {

// What an emulated MOV DR did.
struct DrEmulation {
  // kOk: done, RIP advanced past it. Otherwise the exception to inject instead (RIP unchanged).
  bp::DrAccessResult::Action action = bp::DrAccessResult::Action::kOk;
  std::uint64_t dr6 = 0;               // kInjectDb: the DR6 for the handler
  std::optional<bp::Error> arm_error;  // kOk: a breakpoint the write enabled could not be armed
  bool wrote = false;                  // a MOV to DR: the guest's breakpoints may have changed
};

// What the safety net found.
struct UntrappedChange {
  bool changed = false;   // KVM's DRs differed from what drvm loaded: the file was updated
  bool imported = false;  // ... in an address or DR7: a MOV DR that drvm did not see
};

class GuestDrAccess {
 public:
  GuestDrAccess(Vcpu& vcpu, bp::GuestDrFile& file) : vcpu_(vcpu), file_(file) {
    loaded_ = vcpu.debugregs();
  }

  // Emulates `move`, the MOV DR at RIP, as the processor would (SDM Vol. 3, 17.2: #UD for DR4/DR5
  // with CR4.DE, #GP at CPL > 0, #DB with BD under DR7.GD).
  DrEmulation emulate(RegisterCache& registers, const DecodedMove& move);

  // Makes KVM's copy equal to the guest's file (see the invariant).
  void mirror();
  // A #DB is injected with `dr6`: KVM's copy says so too, for code drvm never sees.
  void set_dr6(std::uint64_t dr6);
  // The safety net: imports what changed in KVM's DRs since drvm loaded them.
  UntrappedChange check_untrapped();

 private:
  Vcpu& vcpu_;
  bp::GuestDrFile& file_;
  kvm_debugregs loaded_{};  // what KVM's own guest DRs hold
};

}  // namespace drvm::vmm::debug
