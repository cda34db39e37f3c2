// PUSHF, POPF and IRET executed by drvm under --exact. While KVM single-steps a vCPU it owns
// RFLAGS.TF: KVM_GET_REGS hides the guest's TF, POPF/IRET that load TF end KVM's stepping (the
// guest would run unchecked until its next exit) and PUSHF pushes KVM's view. So --exact keeps
// the guest's TF itself and executes the common 64-bit ring-0 forms of these instructions here;
// everything else is single-stepped.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>

#include "vmm/debug/access_decoder.hpp"
#include "vmm/x86/paging.hpp"

namespace drvm::vmm::debug {

struct FlagsInstruction {
  kvm_regs regs{};     // the registers after the instruction, TF included
  MemoryAccess stack;  // the stack bytes it read (POPF, IRET) or wrote (PUSHF)
};

// Executes the PUSHFQ, POPFQ or IRETQ (to the same CS and SS) in `bytes` at RIP, as the processor
// does at CPL 0 in 64-bit mode (SDM Vol. 2, PUSHF, POPF and IRET). `regs.rflags` holds the
// guest's TF. Returns nullopt for any other instruction or form, or when the stack is not
// accessible; the caller then single-steps it.
std::optional<FlagsInstruction> emulate_flags_instruction(std::span<const std::uint8_t> bytes,
                                                          const kvm_regs& regs,
                                                          const kvm_sregs& sregs,
                                                          PhysicalMemory& memory);

}  // namespace drvm::vmm::debug
