// The registers of the vCPU being handled, read from KVM at most once per exit: with
// KVM_CAP_SYNC_REGS they come with the exit and no ioctl is needed. Valid until the next entry.
#pragma once

#include <linux/kvm.h>

#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm::debug {

class RegisterCache {
 public:
  explicit RegisterCache(Vcpu& vcpu) : vcpu_(vcpu) {}

  const kvm_regs& regs() {
    if (!regs_valid_) {
      regs_ = vcpu_.regs();
      regs_valid_ = true;
    }
    return regs_;
  }
  const kvm_sregs& sregs() {
    if (!sregs_valid_) {
      sregs_ = vcpu_.sregs();
      sregs_valid_ = true;
    }
    return sregs_;
  }
  void set_regs(const kvm_regs& regs) {
    vcpu_.set_regs(regs);
    regs_ = regs;
    regs_valid_ = true;
  }
  // KVM_RUN returned: take what it synced.
  void synced(const kvm_run& run, bool with_regs, bool with_sregs) {
    regs_valid_ = with_regs;
    sregs_valid_ = with_sregs;
    if (with_regs) regs_ = run.s.regs.regs;
    if (with_sregs) sregs_ = run.s.regs.sregs;
  }
  // Someone else may change the registers before the next exit (a debugger, the run loop).
  void invalidate() { regs_valid_ = sregs_valid_ = false; }

 private:
  Vcpu& vcpu_;
  bool regs_valid_ = false;
  bool sregs_valid_ = false;
  kvm_regs regs_{};
  kvm_sregs sregs_{};
};

}  // namespace drvm::vmm::debug
