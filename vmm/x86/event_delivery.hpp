// x86 event delivery (Intel SDM Vol. 3, chapter 6): IDT gates, the checks a software interrupt
// makes before it vectors, and the two ways drvm delivers an event: queued for KVM
// (KVM_SET_VCPU_EVENTS), or written by drvm itself when KVM's delivery would touch a page drvm
// protects. INT n/INT3 completion (software_interrupts.cpp) and every injection of the debug
// controller go through here.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>

#include "vmm/kvm/guest_memory.hpp"
#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {

struct IdtGate {
  std::uint64_t handler = 0;  // offset (all 64 bits in long mode, 32 otherwise)
  std::uint16_t selector = 0;
  unsigned type = 0;  // 0xe interrupt gate, 0xf trap gate (64-bit or 32-bit), 0x5 task gate
  unsigned dpl = 0;
  unsigned ist = 0;  // long mode only
  bool present = false;
};

// Gate `vector` of the IDT in `sregs` (16-byte gates in long mode, 8-byte otherwise), or nullopt
// when it lies beyond the IDT limit or outside memory (delivery then raises #GP: KVM's to make).
std::optional<IdtGate> read_idt_gate(const PhysicalMemory& memory, const kvm_sregs& sregs,
                                     std::uint8_t vector);

struct Exception {
  std::uint8_t vector = 0;
  std::optional<std::uint32_t> error_code;
};

// The fault INT n/INT3 raises at the instruction instead of vectoring: #GP when CPL > the gate's
// DPL, else #NP when the gate is not present, both with the IDT error code (vector << 3 | 2).
// nullopt when the gate lets it through (or could not be read: KVM raises that #GP itself).
std::optional<Exception> software_interrupt_fault(const std::optional<IdtGate>& gate, unsigned cpl,
                                                  std::uint8_t vector);

// Queues an event for KVM to deliver at the next KVM_RUN. Vectors below 32 are exceptions, with
// the DR6 payload of a #DB when the host takes payloads (KVM_CAP_EXCEPTION_PAYLOAD); others are
// injected as interrupts (KVM refuses them as exceptions), as an INT n would deliver them.
void queue_event(Vcpu& vcpu, const Exception& event, std::optional<std::uint64_t> dr6_payload,
                 bool payload_supported);

// Delivers `event` through a present 64-bit interrupt or trap gate into the current code segment
// at CPL 0 without IST, writing the frame (SS, RSP, RFLAGS = pushed_rflags, CS, RIP, error code)
// itself, as the processor does with no privilege change (SDM Vol. 3, 6.14.2): RSP aligned down
// to 16, TF/RF/NT cleared, IF cleared by an interrupt gate. Returns false, changing nothing, for
// any other gate or when the frame cannot be written.
bool deliver_without_privilege_change(PhysicalMemory& memory, const kvm_sregs& sregs,
                                      kvm_regs& regs, const Exception& event,
                                      std::uint64_t pushed_rflags);

}  // namespace drvm::vmm
