// drvm's own single step of one guest instruction (KVM_GUESTDBG_SINGLESTEP): over a planted trap
// or a hardware instruction breakpoint, for a debugger's stepi, with a protected page opened for
// an instruction KVM cannot complete through MMIO exits, and each step of the single-step engine.
// The stepper decodes what the instruction will access where no engine would see it, cuts a REP
// string instruction to one iteration when iterations must be observed (the processor's #DB comes
// between iterations; KVM runs them all in one go), and keeps the guest's TF, which KVM hides
// while it steps. One per vCPU.
//
// Invariant: between begin() and end() the vCPU enters the guest only with SINGLESTEP set; end()
// undoes everything begin() and the engines did for the step (lifted site, opened page,
// suppressed DRs), and a cut REP has its count restored by resume_cut_rep().
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "bpcore/effective_set.hpp"
#include "vmm/debug/access_decoder.hpp"
#include "vmm/debug/engines/hardware_engine.hpp"
#include "vmm/debug/engines/int3_engine.hpp"
#include "vmm/debug/engines/page_engine.hpp"
#include "vmm/debug/engines/trap_sites.hpp"
#include "vmm/debug/register_cache.hpp"

namespace drvm::vmm::debug {

// A REP string instruction made to stop after its current iteration: its count register was set
// to 1 for that iteration.
struct RepCut {
  bool active = false;
  std::uint64_t rip = 0;
  std::uint64_t rcx = 0;  // RCX before the iteration
  unsigned length = 0;
  std::uint64_t mask = 0;
  RepCondition condition = RepCondition::kNone;
};

// The memory accesses a finished step made, as decoded before it ran (for the data watches no
// engine observes during a step: those of an opened page, and everything under --exact).
struct StepAccesses {
  std::array<MemoryAccess, DecodedAccesses::kMax> list{};
  std::size_t count = 0;
};

class Stepper {
 public:
  Stepper(GuestMemory& memory, const TrapSites& sites, const PageGuard& pages,
          PageEngine& page_engine, Int3Engine& int3, HardwareEngine& hardware,
          RegisterCache& registers)
      : memory_(memory),
        sites_(sites),
        pages_(pages),
        page_engine_(page_engine),
        int3_(int3),
        hardware_(hardware),
        registers_(registers) {}

  // Why the vCPU steps now (several may hold; each is cleared by the code that answers it).
  bool over = false;          // drvm runs an instruction at a boundary it intercepted
  bool for_debugger = false;  // a debugger's stepi: ends in a stop
  // The guest's TF when the step began, and once the stepped instruction completes (POPF and
  // IRET load it). KVM drops TF when its step ends: the controller gives it back.
  bool guest_tf = false;
  bool tf_after = false;

  // Starts a step of the instruction at RIP. `guest_tf` is the guest's own TF (KVM hides it while
  // it steps); `whole_vcpu` is the single-step engine (decodes every instruction, opens nothing);
  // `data_slots` are the data watches of `eff` an iteration of a REP string may hit.
  void begin(const kvm_regs& regs, const kvm_sregs& sregs, bool guest_tf, bool whole_vcpu,
             const bp::EffectiveSet& eff, std::uint64_t data_slots);
  // The stepped instruction retired or faulted (registers `after`): undoes the step's changes and
  // returns the accesses it made, if it was decoded and retired.
  StepAccesses end(const kvm_regs& after);
  // Whether a step (or a cut REP iteration) is under way, from begin() to its exit.
  bool in_flight() const {
    return over || for_debugger || page_engine_.open() || rep_cut_.active || int3_.lifted();
  }
  std::uint64_t start_rip() const { return before_.rip; }
  // An exception was delivered instead: the decoded instruction will not complete.
  void drop_decode() { decoded_ = false; }

  // Makes the REP string instruction at RIP (`regs`, before the iteration in flight or about to
  // run) stop after that iteration (SDM Vol. 3, 17.3.1.2 and 17.3.1.4). False when not a REP
  // string, already cut, or on its last iteration.
  bool cut_rep(kvm_regs& regs, const DecodedAccesses& decoded);
  // The cut iteration is over: restores the remaining count and, while iterations remain, puts RIP
  // back at the instruction with RF = 1 (what the processor has between iterations).
  void resume_cut_rep(kvm_regs& regs);
  // KVM can return from a REP string instruction whose last iteration touched a protected page
  // with RIP still at it and RCX = 0; the processor would be past it.
  void retire_finished_rep(kvm_regs& regs, const kvm_sregs& sregs);
  // A MMIO read matched a watch: its REP must stop after this iteration (KVM would run on).
  void cut_rep_at_rip();

  // The TF a POPF or IRET at the start of `bytes` loads (64-bit CPL-0 forms), read from the stack
  // without executing it.
  std::optional<bool> tf_loaded_by(std::span<const std::uint8_t> bytes, const kvm_regs& regs,
                                   const kvm_sregs& sregs);

 private:
  // The protected page a system instruction at RIP reads or writes (is_system_instruction): KVM
  // does that access itself, with no MMIO exit to complete, so its page is opened for the step.
  std::optional<std::uint64_t> system_operand_page(const kvm_regs& regs, const kvm_sregs& sregs);
  // Whether the decoded REP string instruction must run one iteration per step: a data watch may
  // be hit by one of its iterations, or the guest (TF) or a debugger single-steps it.
  bool iterations_observed(const kvm_regs& regs, const bp::EffectiveSet& eff,
                           std::uint64_t data_slots) const;
  DecodedAccesses decode_at(const kvm_regs& regs, const kvm_sregs& sregs) const;

  GuestMemory& memory_;
  const TrapSites& sites_;
  const PageGuard& pages_;
  PageEngine& page_engine_;
  Int3Engine& int3_;
  HardwareEngine& hardware_;
  RegisterCache& registers_;

  bool decoded_ = false;
  DecodedAccesses decode_;
  kvm_regs before_{};
  RepCut rep_cut_;
};

}  // namespace drvm::vmm::debug
