#include "vmm/debug/flags_instructions.hpp"

#include <Zydis/Zydis.h>

#include <array>
#include <cstring>

#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {
namespace {

// Flags POPF loads at CPL 0: CF PF AF ZF SF TF IF DF OF IOPL NT AC ID (RF is cleared, VM, VIF and
// VIP are kept).
constexpr std::uint64_t kPopfLoaded = 0x247fd5;
// Flags IRET loads at CPL 0 in IA-32e mode: the above plus RF, VIF and VIP.
constexpr std::uint64_t kIretLoaded = 0x3f7fd5;

}  // namespace

std::optional<FlagsInstruction> emulate_flags_instruction(std::span<const std::uint8_t> bytes,
                                                          const kvm_regs& regs,
                                                          const kvm_sregs& sregs,
                                                          PhysicalMemory& memory) {
  if (!in_64bit_mode(sregs) || (sregs.cs.selector & 3) != 0) return std::nullopt;
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  ZydisDecodedInstruction instruction;
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, nullptr, bytes.data(), bytes.size(),
                                                  &instruction)) ||
      instruction.operand_width != 64) {
    return std::nullopt;
  }
  const PagingState paging = PagingState::from(sregs);
  if (instruction.mnemonic == ZYDIS_MNEMONIC_PUSHFQ) {
    // The image has RF and VM cleared (SDM Vol. 2, PUSHF).
    const std::uint64_t image = regs.rflags & ~(x86::kRflagsRf | x86::kRflagsVm);
    const std::uint64_t slot = regs.rsp - 8;
    if (!write_virtual(memory, paging, slot, std::as_bytes(std::span(&image, 1))).ok()) {
      return std::nullopt;
    }
    FlagsInstruction result{regs, MemoryAccess{bp::Access::kWrite, slot, 8}};
    result.regs.rsp = slot;
    result.regs.rip = regs.rip + instruction.length;
    result.regs.rflags &= ~x86::kRflagsRf;  // cleared once the instruction completes
    return result;
  }
  const bool popf = instruction.mnemonic == ZYDIS_MNEMONIC_POPFQ;
  if (!popf && instruction.mnemonic != ZYDIS_MNEMONIC_IRETQ) return std::nullopt;

  std::array<std::uint64_t, 5> frame{};  // IRETQ: RIP, CS, RFLAGS, RSP, SS
  const std::uint32_t size = popf ? 8 : 40;
  const auto out = std::as_writable_bytes(std::span(frame.data(), size / 8));
  if (!read_virtual(memory, paging, regs.rsp, out).ok()) return std::nullopt;

  FlagsInstruction result{regs, MemoryAccess{bp::Access::kRead, regs.rsp, size}};
  kvm_regs& after = result.regs;
  after.rip = regs.rip + instruction.length;
  if (popf) {
    after.rflags = (regs.rflags & ~(kPopfLoaded | x86::kRflagsRf)) | (frame[0] & kPopfLoaded);
    after.rsp = regs.rsp + 8;
  } else {
    // A return to other code or stack segments needs descriptor loads: left to the processor.
    if (frame[1] != sregs.cs.selector || frame[4] != sregs.ss.selector) return std::nullopt;
    after.rip = frame[0];
    after.rflags = (regs.rflags & ~kIretLoaded) | (frame[2] & kIretLoaded);
    after.rsp = frame[3];
  }
  after.rflags |= x86::kRflagsFixed1;
  return result;
}

}  // namespace drvm::vmm::debug
