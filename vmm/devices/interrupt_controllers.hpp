// The interrupt controllers and timers of drvm's PC platform, all in the kernel as QEMU's PC and
// microvm machines have them under KVM: the 8259 PIC pair, the I/O APIC (24 pins at 0xfec00000),
// a local APIC per vCPU (0xfee00000), and the 8254 PIT. GSI routing is QEMU's: ISA IRQ n goes to
// PIC input n and I/O APIC pin n, except IRQ 0 (the PIT), which goes to I/O APIC pin 2 (the MADT's
// interrupt source override says so).
//
// Also the rule for a vCPU that waits in HLT inside KVM_RUN: whether anything can still wake it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>

#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm::irq {

constexpr std::uint64_t kLapicAddress = 0xfee00000;
constexpr std::uint64_t kIoapicAddress = 0xfec00000;
constexpr std::uint8_t kIoapicId = 0;
constexpr unsigned kIoapicPins = 24;
constexpr std::uint32_t kPitIrq = 0;
constexpr std::uint32_t kPitIoapicPin = 2;
// The legacy PIC's vectors as a PC BIOS programs them.
constexpr std::uint8_t kPicMasterVectorBase = 0x08;
constexpr std::uint8_t kPicSlaveVectorBase = 0x70;

// KVM_CREATE_IRQCHIP, QEMU's GSI routing and KVM_CREATE_PIT2; before any vCPU is created. Then
// puts the PIC pair in the state a BIOS leaves it in: initialized (vectors 0x08 and 0x70, the
// slave cascaded on IRQ 2, edge-triggered) with every line masked, so that nothing reaches a CPU
// through the PIC until the guest unmasks a line.
void create_interrupt_controllers(Vm& vm);

// The local APIC's LINT0 as ExtINT (the PIC's output) and LINT1 as NMI, as a PC BIOS leaves the
// bootstrap processor's (and as Firecracker sets them).
void set_bios_lint(Vcpu& vcpu);

// The I/O APIC pin an ISA IRQ arrives at.
constexpr unsigned ioapic_pin(std::uint32_t isa_irq) {
  return isa_irq == kPitIrq ? kPitIoapicPin : isa_irq;
}

// Whether a vCPU sitting in HLT can still be woken, and by what (or why not).
struct WakeCheck {
  bool can_wake = false;
  std::string detail;  // the sources that can wake it, or why none can
};

// Everything the decision looks at, as KVM reports it.
struct InterruptState {
  std::uint64_t rflags = 0;
  std::uint64_t apic_base = 0;     // IA32_APIC_BASE (kvm_sregs.apic_base)
  kvm_lapic_state lapic{};         // KVM_GET_LAPIC (TMCCT is the live current count)
  std::uint64_t tsc_deadline = 0;  // IA32_TSC_DEADLINE, read only in TSC-deadline mode
  kvm_pic_state pic_master{};
  kvm_pic_state pic_slave{};
  kvm_ioapic_state ioapic{};
  kvm_pit_state2 pit{};
  bool nmi_pending = false;         // an NMI queued or being injected (KVM_GET_VCPU_EVENTS)
  std::int64_t now_ns = 0;          // CLOCK_MONOTONIC, the clock of the PIT's count_load_time
  bool com1_can_interrupt = false;  // Uart16550::can_interrupt()
  std::uint32_t com1_irq = 4;
};

// The rule itself (docs/vmm.md, "HLT"), on a snapshot.
WakeCheck judge_wake_sources(const InterruptState& state);

// Takes the snapshot and judges it. Run on the vCPU's own thread while it is outside KVM_RUN.
WakeCheck check_wake_sources(Vm& vm, Vcpu& vcpu, const kvm_regs& regs, const kvm_sregs& sregs,
                             bool com1_can_interrupt, std::uint32_t com1_irq);

}  // namespace drvm::vmm::irq
