// Decoding the instructions the debug engines care about: MOV to/from DRn (0F 21 / 0F 23) and MOV
// to CRn (0F 22, paging changes), from raw bytes, plus the processor state a MOV DR depends on and
// general-purpose register access by ModRM number.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "bpcore/guest_dr_file.hpp"

namespace drvm::vmm::debug {

enum class ControlMove : std::uint8_t {
  kFromDr,  // MOV r, DRn  (0F 21)
  kToDr,    // MOV DRn, r  (0F 23)
  kToCr,    // MOV CRn, r  (0F 22): a possible paging change
};

struct DecodedMove {
  ControlMove kind = ControlMove::kFromDr;
  unsigned special = 0;  // DR or CR number 0-15 (REX.R extends it)
  unsigned gpr = 0;      // ModRM.rm, REX.B extended: 0 = RAX ... 15 = R15
  unsigned length = 0;   // instruction bytes including prefixes
};

// Decodes a MOV DR / MOV to CR at bytes[0]. `long_mode`: 64-bit code (REX prefixes exist). The
// ModRM mod field is ignored, as the processor does for these instructions.
std::optional<DecodedMove> decode_control_move(const std::uint8_t* bytes, std::size_t size,
                                               bool long_mode);

// Whether the instruction at bytes[0] is one KVM carries out by reading or writing guest memory
// itself rather than as MMIO drvm could complete (LGDT, LIDT, SGDT, SIDT, LLDT, LTR, FXSAVE,
// FXRSTOR, and IRET's frame on this kind of host), or one that moves the structures KVM reads on
// its own (those, and MOV to CR0, CR3 or CR4). Its memory operand's page is opened for its step,
// and the layout is checked after it.
bool is_system_instruction(const std::uint8_t* bytes, std::size_t size, bool long_mode);

// The processor state a MOV DR is checked against (CR4.DE, 64-bit mode, CPL).
bp::CpuMode cpu_mode(const kvm_sregs& sregs);
// 64-bit code: EFER.LMA and CS.L.
bool in_64bit_mode(const kvm_sregs& sregs);

// RAX ... R15 by number.
__u64& gpr(kvm_regs& regs, unsigned number);

}  // namespace drvm::vmm::debug
