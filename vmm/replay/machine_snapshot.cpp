#include "vmm/replay/machine_snapshot.hpp"

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "vmm/machine.hpp"

namespace drvm::vmm::replay {

namespace {

constexpr std::uint32_t kMsrTsc = 0x10;
constexpr std::uint32_t kMsrApicBase = 0x1b;
constexpr std::uint32_t kMsrTscAdjust = 0x3b;
constexpr std::uint32_t kMsrSysenterCs = 0x174;
constexpr std::uint32_t kMsrSysenterEsp = 0x175;
constexpr std::uint32_t kMsrSysenterEip = 0x176;
constexpr std::uint32_t kMsrMiscEnable = 0x1a0;
constexpr std::uint32_t kMsrPat = 0x277;
constexpr std::uint32_t kMsrTscDeadline = 0x6e0;
constexpr std::uint32_t kMsrStar = 0xc0000081;
constexpr std::uint32_t kMsrLstar = 0xc0000082;
constexpr std::uint32_t kMsrCstar = 0xc0000083;
constexpr std::uint32_t kMsrSfmask = 0xc0000084;
constexpr std::uint32_t kMsrFsBase = 0xc0000100;
constexpr std::uint32_t kMsrGsBase = 0xc0000101;
constexpr std::uint32_t kMsrKernelGsBase = 0xc0000102;
constexpr std::uint32_t kMsrTscAux = 0xc0000103;

// The MSRs a snapshot holds when KVM lists them, in restore order: the TSC first (later writes
// may depend on it), APIC_BASE before KVM_SET_LAPIC, TSC_DEADLINE last (restore() sets it after
// the local APIC, whose restore would disarm the timer it arms). EFER travels in kvm_sregs (KVM
// does not list it).
constexpr std::uint32_t kSnapshotMsrs[] = {
    kMsrTsc,        kMsrTscAdjust,   kMsrApicBase,    kMsrMiscEnable, kMsrPat,
    kMsrSysenterCs, kMsrSysenterEsp, kMsrSysenterEip, kMsrStar,       kMsrLstar,
    kMsrCstar,      kMsrSfmask,      kMsrFsBase,      kMsrGsBase,     kMsrKernelGsBase,
    kMsrTscAux,     kMsrTscDeadline,
};

constexpr std::size_t kXsaveLegacySize = 4096;

}  // namespace

MachineSnapshotter::MachineSnapshotter(const Vm& vm, const Vcpu& probe_vcpu) {
  const System& system = vm.system();
  if (system.check_extension(KVM_CAP_XSAVE) > 0) {
    const int xsave2 = vm.check_extension(KVM_CAP_XSAVE2);
    xsave_size_ = xsave2 > static_cast<int>(kXsaveLegacySize) ? static_cast<std::size_t>(xsave2)
                                                              : kXsaveLegacySize;
  }
  has_xcrs_ = system.check_extension(KVM_CAP_XCRS) > 0;

  const std::vector<std::uint32_t> listed = system.msr_index_list();
  for (const std::uint32_t index : kSnapshotMsrs) {
    if (std::find(listed.begin(), listed.end(), index) != listed.end()) {
      msr_indices_.push_back(index);
    }
  }
  // KVM lists some MSRs it then refuses for this vCPU's CPUID (KVM_GET_MSRS stops at the first
  // one): drop those.
  for (;;) {
    const std::size_t read = probe_vcpu.msrs(msr_indices_).size();
    if (read == msr_indices_.size()) break;
    msr_indices_.erase(msr_indices_.begin() + static_cast<std::ptrdiff_t>(read));
  }
}

MachineSnapshotter::MachineSnapshotter(Machine& machine)
    : MachineSnapshotter(machine.vm(), machine.vcpu(0).vcpu()) {}

VcpuSnapshot MachineSnapshotter::capture(const Vcpu& vcpu) const {
  VcpuSnapshot snapshot;
  snapshot.regs = vcpu.regs();
  snapshot.sregs = vcpu.sregs();
  if (xsave_size_ != 0) {
    snapshot.xsave = vcpu.xsave(xsave_size_);
  } else {
    snapshot.fpu = vcpu.fpu();
  }
  if (has_xcrs_) snapshot.xcrs = vcpu.xcrs();
  snapshot.msrs = vcpu.msrs(msr_indices_);
  if (snapshot.msrs.size() != msr_indices_.size()) {
    throw KvmError(fmt::format("KVM_GET_MSRS {:#x}", msr_indices_[snapshot.msrs.size()]), EIO);
  }
  snapshot.debugregs = vcpu.debugregs();
  snapshot.events = vcpu.events();
  snapshot.mp_state = vcpu.mp_state();
  snapshot.lapic = vcpu.lapic();
  return snapshot;
}

void MachineSnapshotter::restore(Vcpu& vcpu, const VcpuSnapshot& snapshot) const {
  vcpu.set_regs(snapshot.regs);
  vcpu.set_sregs(snapshot.sregs);
  if (!snapshot.xsave.empty()) {
    vcpu.set_xsave(snapshot.xsave);
  } else {
    vcpu.set_fpu(snapshot.fpu);
  }
  if (snapshot.xcrs) vcpu.set_xcrs(*snapshot.xcrs);

  // Everything but TSC_DEADLINE now; it goes after the local APIC.
  std::vector<kvm_msr_entry> msrs;
  std::optional<kvm_msr_entry> deadline;
  for (const kvm_msr_entry& entry : snapshot.msrs) {
    if (entry.index == kMsrTscDeadline) {
      deadline = entry;
    } else {
      msrs.push_back(entry);
    }
  }
  if (const std::size_t set = vcpu.set_msrs(msrs); set != msrs.size()) {
    throw KvmError(fmt::format("KVM_SET_MSRS {:#x}", msrs[set].index), EINVAL);
  }
  vcpu.set_mp_state(snapshot.mp_state.mp_state);
  vcpu.set_lapic(snapshot.lapic);
  if (deadline) vcpu.set_msr(deadline->index, deadline->data);
  vcpu.set_debugregs(snapshot.debugregs);

  // Pending events last: also the NMI pending flag and the SIPI vector, which KVM only takes when
  // flagged valid.
  kvm_vcpu_events events = snapshot.events;
  events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
  vcpu.set_events(events);
}

VmSnapshot MachineSnapshotter::capture(const Vm& vm) const {
  VmSnapshot snapshot;
  snapshot.pic_master = vm.irqchip(KVM_IRQCHIP_PIC_MASTER);
  snapshot.pic_slave = vm.irqchip(KVM_IRQCHIP_PIC_SLAVE);
  snapshot.ioapic = vm.irqchip(KVM_IRQCHIP_IOAPIC);
  snapshot.pit = vm.pit_state();
  snapshot.clock = vm.clock();
  return snapshot;
}

void MachineSnapshotter::restore(Vm& vm, const VmSnapshot& snapshot) const {
  vm.set_irqchip(snapshot.pic_master);
  vm.set_irqchip(snapshot.pic_slave);
  vm.set_irqchip(snapshot.ioapic);
  vm.set_pit_state(snapshot.pit);
  // The clock as it was, not advanced by the wall time since (KVM_CLOCK_REALTIME would).
  kvm_clock_data clock{};
  clock.clock = snapshot.clock.clock;
  vm.set_clock(clock);
}

MachineSnapshot MachineSnapshotter::capture(Machine& machine) const {
  MachineSnapshot snapshot;
  snapshot.vm = capture(machine.vm());
  for (std::size_t i = 0; i < machine.vcpu_count(); ++i) {
    snapshot.vcpus.push_back(capture(machine.vcpu(i).vcpu()));
  }
  snapshot.com1 = machine.com1().save();
  return snapshot;
}

void MachineSnapshotter::restore(Machine& machine, const MachineSnapshot& snapshot) const {
  if (snapshot.vcpus.size() != machine.vcpu_count()) {
    throw std::invalid_argument(fmt::format("snapshot of {} vCPUs restored into a machine of {}",
                                            snapshot.vcpus.size(), machine.vcpu_count()));
  }
  restore(machine.vm(), snapshot.vm);
  for (std::size_t i = 0; i < snapshot.vcpus.size(); ++i) {
    restore(machine.vcpu(i).vcpu(), snapshot.vcpus[i]);
  }
  machine.com1().restore(snapshot.com1);
}

}  // namespace drvm::vmm::replay
