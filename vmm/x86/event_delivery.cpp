#include "vmm/x86/event_delivery.hpp"

#include <array>
#include <cstring>
#include <span>

#include "vmm/x86/paging.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm {

std::optional<IdtGate> read_idt_gate(const PhysicalMemory& memory, const kvm_sregs& sregs,
                                     std::uint8_t vector) {
  const bool long_mode = (sregs.efer & x86::kEferLma) != 0;
  const unsigned size = long_mode ? 16 : 8;
  const std::uint64_t offset = std::uint64_t{vector} * size;
  if (offset + size - 1 > sregs.idt.limit) return std::nullopt;
  std::array<std::byte, 16> raw{};
  if (!read_virtual(memory, PagingState::from(sregs), sregs.idt.base + offset,
                    std::span(raw).first(size))
           .ok()) {
    return std::nullopt;
  }
  std::uint64_t low = 0, high = 0;
  std::memcpy(&low, raw.data(), 8);
  std::memcpy(&high, raw.data() + 8, 8);
  IdtGate gate;
  gate.handler = (low & 0xffff) | ((low >> 32) & 0xffff0000);
  if (long_mode) gate.handler |= (high & 0xffffffff) << 32;
  gate.selector = static_cast<std::uint16_t>(low >> 16);
  gate.ist = long_mode ? (low >> 32) & 7 : 0;
  gate.type = (low >> 40) & 0xf;
  gate.dpl = (low >> 45) & 3;
  gate.present = ((low >> 47) & 1) != 0;
  return gate;
}

std::optional<Exception> software_interrupt_fault(const std::optional<IdtGate>& gate, unsigned cpl,
                                                  std::uint8_t vector) {
  if (!gate) return std::nullopt;
  const std::uint32_t idt_error = (std::uint32_t{vector} << 3) | 2;
  if (cpl > gate->dpl) return Exception{x86::kVectorGp, idt_error};
  if (!gate->present) return Exception{x86::kVectorNp, idt_error};
  return std::nullopt;
}

void queue_event(Vcpu& vcpu, const Exception& event, std::optional<std::uint64_t> dr6_payload,
                 bool payload_supported) {
  kvm_vcpu_events events = vcpu.events();
  events.flags = 0;
  if (event.vector >= 32) {
    events.exception.injected = 0;
    events.exception.pending = 0;
    events.interrupt.injected = 1;
    events.interrupt.nr = event.vector;
    events.interrupt.soft = 0;
  } else {
    events.exception.nr = event.vector;
    events.exception.has_error_code = event.error_code.has_value();
    events.exception.error_code = event.error_code.value_or(0);
    if (payload_supported) {
      // Pending, not injected: KVM merges the payload into DR6 as the delivery happens.
      events.exception.injected = 0;
      events.exception.pending = 1;
      events.exception_has_payload = dr6_payload.has_value();
      events.exception_payload = dr6_payload.value_or(0);
      events.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    } else {
      events.exception.injected = 1;
      events.exception.pending = 0;
    }
  }
  vcpu.set_events(events);
}

bool deliver_without_privilege_change(PhysicalMemory& memory, const kvm_sregs& sregs,
                                      kvm_regs& regs, const Exception& event,
                                      std::uint64_t pushed_rflags) {
  if ((sregs.efer & x86::kEferLma) == 0 || !sregs.cs.l) return false;
  const auto gate = read_idt_gate(memory, sregs, event.vector);
  // The same code segment at CPL 0: nothing to load from the GDT, no stack switch.
  if (!gate || !gate->present || gate->ist != 0 || (gate->type != 0xe && gate->type != 0xf) ||
      gate->selector != sregs.cs.selector || sregs.cs.dpl != 0) {
    return false;
  }
  const std::uint64_t frame = (regs.rsp & ~std::uint64_t{15}) - (event.error_code ? 48 : 40);
  std::array<std::uint64_t, 6> words{};
  unsigned n = 0;
  if (event.error_code) words[n++] = *event.error_code;
  words[n++] = regs.rip;
  words[n++] = sregs.cs.selector;
  words[n++] = pushed_rflags;
  words[n++] = regs.rsp;
  words[n++] = sregs.ss.selector;
  if (!write_virtual(memory, PagingState::from(sregs), frame,
                     std::as_bytes(std::span(words.data(), n)))
           .ok()) {
    return false;
  }
  regs.rsp = frame;
  regs.rip = gate->handler;
  regs.rflags &= ~(x86::kRflagsTf | x86::kRflagsRf | x86::kRflagsNt);
  if (gate->type == 0xe) regs.rflags &= ~x86::kRflagsIf;  // an interrupt gate masks interrupts
  return true;
}

}  // namespace drvm::vmm
