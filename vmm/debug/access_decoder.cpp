#include "vmm/debug/access_decoder.hpp"

#include <Zydis/Zydis.h>

#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {
namespace {

std::uint64_t register_value(const kvm_regs& regs, ZydisRegister reg, std::uint64_t rip_next) {
  if (reg == ZYDIS_REGISTER_NONE) return 0;
  if (reg == ZYDIS_REGISTER_RIP || reg == ZYDIS_REGISTER_EIP) return rip_next;
  const ZydisRegister wide = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
  const std::int8_t id = ZydisRegisterGetId(wide);
  if (ZydisRegisterGetClass(wide) != ZYDIS_REGCLASS_GPR64 || id < 0) return 0;
  kvm_regs copy = regs;
  std::uint64_t value = gpr(copy, static_cast<unsigned>(id));
  switch (ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg)) {
    case 32:
      return value & 0xffffffffu;
    case 16:
      return value & 0xffffu;
    default:
      return value;
  }
}

std::uint64_t segment_base(const kvm_sregs& sregs, ZydisRegister segment, bool long_mode) {
  switch (segment) {
    case ZYDIS_REGISTER_FS:
      return sregs.fs.base;
    case ZYDIS_REGISTER_GS:
      return sregs.gs.base;
    default:
      break;
  }
  if (long_mode) return 0;  // CS/DS/ES/SS bases are ignored in 64-bit mode
  switch (segment) {
    case ZYDIS_REGISTER_CS:
      return sregs.cs.base;
    case ZYDIS_REGISTER_SS:
      return sregs.ss.base;
    case ZYDIS_REGISTER_ES:
      return sregs.es.base;
    default:
      return sregs.ds.base;
  }
}

bool is_stack_pointer(ZydisRegister reg) {
  return reg == ZYDIS_REGISTER_RSP || reg == ZYDIS_REGISTER_ESP || reg == ZYDIS_REGISTER_SP;
}

}  // namespace

DecodedAccesses DecodedAccesses::decode(std::span<const std::uint8_t> bytes, const kvm_regs& regs,
                                        const kvm_sregs& sregs) {
  DecodedAccesses result;
  const bool long_mode = in_64bit_mode(sregs);
  ZydisDecoder decoder;
  if (long_mode) {
    ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  } else if (sregs.cs.db) {
    ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32);
  } else {
    ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_COMPAT_16, ZYDIS_STACK_WIDTH_16);
  }
  ZydisDecodedInstruction instruction;
  ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT];
  if (!ZYAN_SUCCESS(
          ZydisDecoderDecodeFull(&decoder, bytes.data(), bytes.size(), &instruction, operands))) {
    return result;
  }
  result.valid_ = true;
  result.length_ = instruction.length;
  result.branch_ = instruction.meta.branch_type != ZYDIS_BRANCH_TYPE_NONE ||
                   instruction.meta.category == ZYDIS_CATEGORY_RET ||
                   instruction.meta.category == ZYDIS_CATEGORY_INTERRUPT ||
                   instruction.meta.category == ZYDIS_CATEGORY_SYSTEM;
  result.rep_ = (instruction.attributes &
                 (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)) != 0;
  if (instruction.attributes & ZYDIS_ATTRIB_HAS_REPE)
    result.rep_condition_ = RepCondition::kWhileEqual;
  if (instruction.attributes & ZYDIS_ATTRIB_HAS_REPNE) {
    result.rep_condition_ = RepCondition::kWhileNotEqual;
  }
  if (instruction.address_width == 32) result.count_mask_ = 0xffffffffu;
  if (instruction.address_width == 16) result.count_mask_ = 0xffffu;
  const std::uint64_t address_mask = instruction.address_width == 64   ? ~std::uint64_t{0}
                                     : instruction.address_width == 32 ? 0xffffffffu
                                                                       : 0xffffu;
  const std::uint64_t rip_next = regs.rip + instruction.length;
  for (unsigned i = 0; i < instruction.operand_count && result.count_ < kMax; ++i) {
    const ZydisDecodedOperand& op = operands[i];
    if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || op.mem.type != ZYDIS_MEMOP_TYPE_MEM) continue;
    const bool reads = (op.actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0;
    const bool writes = (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
    if (!reads && !writes) continue;
    const std::uint32_t size = op.size / 8;
    std::uint64_t ea = register_value(regs, op.mem.base, rip_next) +
                       register_value(regs, op.mem.index, rip_next) * op.mem.scale +
                       static_cast<std::uint64_t>(op.mem.disp.value);
    const bool hidden = op.visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN;
    // Zydis gives implicit stack stores as [rsp]: a push stores below the current stack pointer.
    if (hidden && is_stack_pointer(op.mem.base) && writes) ea -= size;
    const bool string_operand =
        hidden && (op.mem.base == ZYDIS_REGISTER_RSI || op.mem.base == ZYDIS_REGISTER_RDI ||
                   op.mem.base == ZYDIS_REGISTER_ESI || op.mem.base == ZYDIS_REGISTER_EDI ||
                   op.mem.base == ZYDIS_REGISTER_SI || op.mem.base == ZYDIS_REGISTER_DI);
    result.string_ = result.string_ || string_operand;
    const std::uint64_t linear =
        segment_base(sregs, op.mem.segment, long_mode) + (ea & address_mask);
    if (reads) {
      result.planned_[result.count_++] = {{bp::Access::kRead, linear, size}, string_operand};
    }
    if (writes && result.count_ < kMax) {
      result.planned_[result.count_++] = {{bp::Access::kWrite, linear, size}, string_operand};
    }
  }
  return result;
}

std::size_t DecodedAccesses::resolve(const kvm_regs& before, const kvm_regs& after,
                                     std::span<MemoryAccess, kMax> out) const {
  std::uint64_t iterations = 1;
  if (string_ && rep_) {
    iterations = ((before.rcx & count_mask_) - (after.rcx & count_mask_)) & count_mask_;
    if (iterations == 0) return 0;
  }
  const bool down = (before.rflags & x86::kRflagsDf) != 0;
  for (std::size_t i = 0; i < count_; ++i) {
    MemoryAccess access = planned_[i].access;
    if (planned_[i].string_operand && iterations > 1) {
      const std::uint64_t span = (iterations - 1) * access.size;
      if (down) access.linear -= span;
      access.size = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(span + access.size, std::uint64_t{1} << 31));
    }
    out[i] = access;
  }
  return count_;
}

bool DecodedAccesses::retired(const kvm_regs& before, const kvm_regs& after) const {
  if (after.rip == before.rip + length_) return true;
  if (string_ && rep_ && after.rip == before.rip) return after.rcx != before.rcx;
  return branch_;
}

}  // namespace drvm::vmm::debug
