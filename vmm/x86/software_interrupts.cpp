#include "vmm/x86/software_interrupts.hpp"

#include <array>
#include <cstddef>

#include "vmm/x86/event_delivery.hpp"
#include "vmm/x86/paging.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm {
std::optional<SoftwareInterrupt> decode_software_interrupt(const std::uint8_t* bytes,
                                                           std::size_t size) {
  if (size >= 1 && bytes[0] == 0xcc) return SoftwareInterrupt{3, 1};
  if (size >= 2 && bytes[0] == 0xcd) return SoftwareInterrupt{bytes[1], 2};
  return std::nullopt;
}

bool deliver_software_interrupt(Vcpu& vcpu, const PhysicalMemory& memory) {
  const kvm_sregs sregs = vcpu.sregs();
  if ((sregs.cr0 & 1) == 0) return false;  // real mode: KVM delivers through the IVT itself
  kvm_regs regs = vcpu.regs();
  const PagingState paging = PagingState::from(sregs);
  std::array<std::byte, 2> raw{};
  const auto fetched = read_virtual(memory, paging, sregs.cs.base + regs.rip, raw);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(raw.data());
  const auto interrupt = decode_software_interrupt(bytes, fetched.transferred);
  if (!interrupt) return false;

  // INT3/INT n check the gate's DPL against CPL (#GP) and then its present bit (#NP), both
  // reported at the instruction (faults), not after it.
  const unsigned cpl = sregs.cs.selector & 3;
  const auto fault = software_interrupt_fault(read_idt_gate(memory, sregs, interrupt->vector), cpl,
                                              interrupt->vector);
  if (!fault) {
    regs.rip += interrupt->length;  // a trap: the handler returns past the instruction
    vcpu.set_regs(regs);
  }
  queue_event(vcpu, fault.value_or(Exception{interrupt->vector, std::nullopt}), std::nullopt,
              false);
  return true;
}

}  // namespace drvm::vmm
