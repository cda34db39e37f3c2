#include "vmm/software_interrupts.hpp"

#include <array>
#include <cstddef>

#include "vmm/paging.hpp"
#include "vmm/x86.hpp"

namespace drvm::vmm {
namespace {

struct Gate {
  unsigned dpl = 0;
  bool present = false;
};

// The access byte of IDT gate `vector`, or nullopt when the gate lies outside the IDT or memory
// (KVM then raises the #GP itself when it vectors the interrupt).
std::optional<Gate> read_gate(const PhysicalMemory& memory, const PagingState& paging,
                              const kvm_sregs& sregs, std::uint8_t vector) {
  const unsigned gate_size = (sregs.efer & x86::kEferLma) ? 16 : 8;
  const std::uint64_t offset = std::uint64_t{vector} * gate_size;
  if (offset + gate_size - 1 > sregs.idt.limit) return std::nullopt;
  std::array<std::byte, 8> low{};
  if (!read_virtual(memory, paging, sregs.idt.base + offset, low).ok()) return std::nullopt;
  const unsigned access = std::to_integer<unsigned>(low[5]);
  return Gate{(access >> 5) & 3, (access & 0x80) != 0};  // DPL is bits 6:5, P is bit 7
}

}  // namespace

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

  kvm_vcpu_events events = vcpu.events();
  events.exception.injected = 1;
  events.exception.has_error_code = 0;
  events.exception.nr = interrupt->vector;
  events.exception.error_code = 0;
  // INT3/INT n check the gate's DPL against CPL (#GP) and then its present bit (#NP), both
  // with the IDT-flavoured error code and reported at the instruction (faults), not after it.
  const unsigned cpl = sregs.cs.selector & 3;
  const auto gate = read_gate(memory, paging, sregs, interrupt->vector);
  const std::uint32_t idt_error = (std::uint32_t{interrupt->vector} << 3) | 2;
  if (gate && (cpl > gate->dpl || !gate->present)) {
    events.exception.nr = cpl > gate->dpl ? x86::kVectorGp : x86::kVectorNp;
    events.exception.has_error_code = 1;
    events.exception.error_code = idt_error;
  } else {
    regs.rip += interrupt->length;  // a trap: the handler returns past the instruction
    vcpu.set_regs(regs);
    if (interrupt->vector >= 32) {
      // Not an exception vector (KVM refuses those as exceptions): an interrupt, injected.
      events.exception.injected = 0;
      events.interrupt.injected = 1;
      events.interrupt.nr = interrupt->vector;
      events.interrupt.soft = 0;
    }
  }
  vcpu.set_events(events);
  return true;
}

}  // namespace drvm::vmm
