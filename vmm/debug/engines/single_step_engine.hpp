// The single-step engine: the whole vCPU runs one instruction per KVM_RUN and drvm decodes each
// before it runs, so every breakpoint and watch is checked in software, on any layout. It serves
// --exact (always on) and a vCPU whose watches a page engine cannot protect (engines/
// system_layout.hpp: then it is entered at a re-arm and left once the layout allows the page
// engines again). While it steps, KVM owns RFLAGS.TF: the engine keeps the guest's TF itself and
// gives it back when it is left. One per vCPU.
//
// Invariant: while on(), RFLAGS.TF in KVM's registers is KVM's, and guest_tf() holds the guest's;
// after leave(), the next entry sets RFLAGS.TF to that value again (take_restore_tf()).
#pragma once

#include <linux/kvm.h>

#include "vmm/debug/register_cache.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {

class SingleStepEngine {
 public:
  bool on() const { return on_; }

  // From the next instruction on, every instruction is stepped. `guest_tf` is the guest's TF now.
  void enter(RegisterCache& registers, bool guest_tf) {
    if (on_) return;
    tf_ = guest_tf;
    kvm_regs regs = registers.regs();
    if (regs.rflags & x86::kRflagsTf) {
      regs.rflags &= ~x86::kRflagsTf;
      registers.set_regs(regs);
    }
    prime = true;
    restore_tf_ = false;
    steps_since_check_ = 0;
    on_ = true;
  }
  // Back to the other engines; KVM_SET_GUEST_DEBUG without SINGLESTEP drops TF, so the guest's TF
  // goes back at the next entry.
  void leave() {
    if (!on_) return;
    restore_tf_ = tf_;
    tf_ = false;
    prime = false;
    steps_since_check_ = 0;
    on_ = false;
  }

  // The guest's TF while on (flags instructions and exception delivery change it).
  bool guest_tf() const { return tf_; }
  void set_guest_tf(bool tf) { tf_ = tf; }

  // Decode the instruction at RIP before the vCPU runs (after a re-arm or a debugger moved RIP).
  bool prime = false;

  // A step outside this engine ended with the guest's TF set: it goes back at the next entry.
  void restore_tf_later() { restore_tf_ = true; }
  void cancel_restore_tf() { restore_tf_ = false; }
  bool take_restore_tf() {
    const bool restore = restore_tf_;
    restore_tf_ = false;
    return restore;
  }
  bool restore_tf_pending() const { return restore_tf_; }

  // Layout-driven stepping (not --exact) looks again every so many instructions, and right after
  // an instruction that moved a system structure (check_now()).
  bool check_due(bool exact_option) {
    constexpr unsigned kLayoutCheckInterval = 256;
    return on_ && !exact_option && ++steps_since_check_ >= kLayoutCheckInterval;
  }
  void check_now() { steps_since_check_ = ~0u - 1; }

 private:
  bool on_ = false;
  bool tf_ = false;
  bool restore_tf_ = false;
  unsigned steps_since_check_ = 0;
};

}  // namespace drvm::vmm::debug
