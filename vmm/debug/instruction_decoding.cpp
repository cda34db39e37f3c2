#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {
namespace {

bool is_legacy_prefix(std::uint8_t byte) {
  switch (byte) {
    case 0x26:
    case 0x2e:
    case 0x36:
    case 0x3e:
    case 0x64:
    case 0x65:  // segments
    case 0x66:
    case 0x67:
    case 0xf0:
    case 0xf2:
    case 0xf3:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<DecodedMove> decode_control_move(const std::uint8_t* bytes, std::size_t size,
                                               bool long_mode) {
  constexpr std::size_t kMaxLength = 15;
  std::size_t i = 0;
  std::uint8_t rex = 0;
  while (i < size && i < kMaxLength && is_legacy_prefix(bytes[i])) ++i;
  // A REX prefix counts only when it immediately precedes the opcode.
  if (long_mode && i < size && (bytes[i] & 0xf0) == 0x40) rex = bytes[i++];
  if (i + 3 > size || i + 3 > kMaxLength || bytes[i] != 0x0f) return std::nullopt;
  DecodedMove move;
  switch (bytes[i + 1]) {
    case 0x21:
      move.kind = ControlMove::kFromDr;
      break;
    case 0x23:
      move.kind = ControlMove::kToDr;
      break;
    case 0x22:
      move.kind = ControlMove::kToCr;
      break;
    default:
      return std::nullopt;
  }
  const std::uint8_t modrm = bytes[i + 2];
  move.special = ((modrm >> 3) & 7) | ((rex & 0x4) ? 8u : 0u);
  move.gpr = (modrm & 7) | ((rex & 0x1) ? 8u : 0u);
  move.length = static_cast<unsigned>(i + 3);
  return move;
}

bool is_system_instruction(const std::uint8_t* bytes, std::size_t size, bool long_mode) {
  if (const auto move = decode_control_move(bytes, size, long_mode)) {
    return move->kind == ControlMove::kToCr &&
           (move->special == 0 || move->special == 3 || move->special == 4);
  }
  std::size_t i = 0;
  while (i < size && i < 14 && is_legacy_prefix(bytes[i])) ++i;
  if (long_mode && i < size && (bytes[i] & 0xf0) == 0x40) ++i;
  if (i < size && bytes[i] == 0xcf) return true;  // IRET: KVM pops its frame itself
  if (i + 3 > size || bytes[i] != 0x0f) return false;
  const unsigned reg = (bytes[i + 2] >> 3) & 7;
  const bool memory_operand = (bytes[i + 2] >> 6) != 3;
  switch (bytes[i + 1]) {
    case 0x01:  // /0 SGDT, /1 SIDT, /2 LGDT, /3 LIDT (memory forms)
      return memory_operand && reg <= 3;
    case 0x00:  // /2 LLDT, /3 LTR
      return reg == 2 || reg == 3;
    case 0xae:  // /0 FXSAVE, /1 FXRSTOR (memory forms)
      return memory_operand && reg <= 1;
    default:
      return false;
  }
}

bool in_64bit_mode(const kvm_sregs& sregs) {
  return (sregs.efer & x86::kEferLma) != 0 && sregs.cs.l != 0;
}

bp::CpuMode cpu_mode(const kvm_sregs& sregs) {
  bp::CpuMode mode;
  mode.cr4_de = (sregs.cr4 & x86::kCr4De) != 0;
  mode.long_mode = in_64bit_mode(sregs);
  // CPL is SS.DPL in protected mode (as KVM computes it), 0 in real mode.
  mode.cpl = (sregs.cr0 & 1) ? sregs.ss.dpl : 0;
  return mode;
}

__u64& gpr(kvm_regs& regs, unsigned number) {
  // ModRM register order: RAX RCX RDX RBX RSP RBP RSI RDI R8-R15.
  __u64* const table[16] = {&regs.rax, &regs.rcx, &regs.rdx, &regs.rbx, &regs.rsp, &regs.rbp,
                            &regs.rsi, &regs.rdi, &regs.r8,  &regs.r9,  &regs.r10, &regs.r11,
                            &regs.r12, &regs.r13, &regs.r14, &regs.r15};
  return *table[number & 15];
}

}  // namespace drvm::vmm::debug
