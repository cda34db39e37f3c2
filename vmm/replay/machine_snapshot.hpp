// The KVM state of a machine at one instant, apart from guest RAM (memory_history.hpp): each
// vCPU's registers, FPU/SSE/AVX state, MSRs, debug registers, pending events, run state and local
// APIC; the VM's PICs, I/O APIC, PIT and kvmclock; and COM1. Captured and restored only while
// every vCPU is paused outside KVM_RUN, and after any pending port I/O or MMIO exit has been
// completed by re-entering KVM_RUN (the KVM API document: that completion is not part of any
// state userspace can read).
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "vmm/devices/serial.hpp"
#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {
class Machine;
}

namespace drvm::vmm::replay {

struct VcpuSnapshot {
  kvm_regs regs{};
  kvm_sregs sregs{};
  std::vector<std::uint32_t> xsave;  // the XSAVE area; empty when the host has no KVM_CAP_XSAVE
  kvm_fpu fpu{};                     // only without XSAVE
  std::optional<kvm_xcrs> xcrs;      // with KVM_CAP_XCRS
  std::vector<kvm_msr_entry> msrs;   // MachineSnapshotter::msr_indices(), in that order
  kvm_debugregs debugregs{};
  kvm_vcpu_events events{};
  kvm_mp_state mp_state{};
  kvm_lapic_state lapic{};
};

struct VmSnapshot {
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

struct MachineSnapshot {
  VmSnapshot vm;
  std::vector<VcpuSnapshot> vcpus;  // by vCPU index
  Uart16550::State com1;
};

// Captures and restores snapshots for one VM: decides once what this host's KVM can save (XSAVE
// and its size, XCRS, which MSRs).
class MachineSnapshotter {
 public:
  // `probe_vcpu`: any vCPU of the VM, paused; its MSRs are read once to drop the ones KVM lists
  // but refuses.
  MachineSnapshotter(const Vm& vm, const Vcpu& probe_vcpu);
  explicit MachineSnapshotter(Machine& machine);

  VcpuSnapshot capture(const Vcpu& vcpu) const;
  // In the order the KVM API document requires: registers, special registers, XSAVE/FPU, XCRs,
  // MSRs (TSC first, APIC_BASE before the local APIC), run state, local APIC, TSC_DEADLINE (which
  // arms the restored APIC timer), debug registers, and the pending events last (KVM_SET_REGS
  // and KVM_SET_SREGS drop or queue events of their own).
  void restore(Vcpu& vcpu, const VcpuSnapshot& snapshot) const;

  VmSnapshot capture(const Vm& vm) const;
  void restore(Vm& vm, const VmSnapshot& snapshot) const;

  // Every vCPU, the VM and COM1. Precondition: every vCPU is paused (or the run has not started).
  MachineSnapshot capture(Machine& machine) const;
  // The VM first (interrupt controllers, PIT, clock), then each vCPU, then COM1, which drives its
  // IRQ line to the restored level.
  void restore(Machine& machine, const MachineSnapshot& snapshot) const;

  const std::vector<std::uint32_t>& msr_indices() const { return msr_indices_; }
  std::size_t xsave_size() const { return xsave_size_; }  // 0: no XSAVE, kvm_fpu instead
  bool has_xcrs() const { return has_xcrs_; }

 private:
  std::size_t xsave_size_ = 0;
  bool has_xcrs_ = false;
  std::vector<std::uint32_t> msr_indices_;
};

}  // namespace drvm::vmm::replay
