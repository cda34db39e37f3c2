// INT3 and INT n that KVM could not deliver itself.
//
// On hosts where KVM runs the guest in its instruction emulator (PVM, see docs/probe.md), INT3
// and INT n in protected or long mode stop KVM_RUN with an emulation failure at the instruction
// instead of vectoring through the guest's IDT. Hardware would deliver them, so drvm completes
// the instruction: it checks the gate's DPL and present bit as the SDM requires for software
// interrupts, moves RIP past the instruction and injects the vector.
#pragma once

#include <cstdint>
#include <optional>

#include "vmm/kvm/guest_memory.hpp"
#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {

struct SoftwareInterrupt {
  std::uint8_t vector = 0;
  std::uint8_t length = 0;  // instruction length: 1 for INT3 (CC), 2 for INT n (CD ib)
};

// Decodes a software-interrupt instruction from its first bytes.
std::optional<SoftwareInterrupt> decode_software_interrupt(const std::uint8_t* bytes,
                                                           std::size_t size);

// If the vCPU stopped at INT3 or INT n, delivers it as hardware would and returns true;
// returns false (changing nothing) for any other instruction.
bool deliver_software_interrupt(Vcpu& vcpu, const PhysicalMemory& memory);

}  // namespace drvm::vmm
