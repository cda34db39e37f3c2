// What an instruction will access in memory, decoded with Zydis before it runs: explicit memory
// operands with their effective addresses, the implicit stack accesses of PUSH/POP/CALL/RET/IRET
// and friends, and the source/destination of string instructions, resolved per iteration after
// the instruction ran (REP: from the change in RCX). Used by --exact and by the single-step
// fallback for instructions fetched from an unmapped (read-watched) page.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "bpcore/attributes.hpp"

namespace drvm::vmm::debug {

struct MemoryAccess {
  bp::Access type = bp::Access::kRead;
  std::uint64_t linear = 0;
  std::uint32_t size = 0;  // bytes; a REP string access covers every iteration that ran
};

// What ends a repeated CMPS/SCAS early besides RCX reaching 0.
enum class RepCondition : std::uint8_t {
  kNone,          // REP (MOVS, STOS, LODS, INS, OUTS): RCX only
  kWhileEqual,    // REPE/REPZ: stops when ZF = 0
  kWhileNotEqual  // REPNE/REPNZ: stops when ZF = 1
};

class DecodedAccesses {
 public:
  static constexpr std::size_t kMax = 8;

  // Decodes the instruction in `bytes` (fetched at RIP) with the registers before it runs.
  // valid() is false for bytes Zydis cannot decode.
  static DecodedAccesses decode(std::span<const std::uint8_t> bytes, const kvm_regs& regs,
                                const kvm_sregs& sregs);

  bool valid() const { return valid_; }
  unsigned length() const { return length_; }
  bool is_string() const { return string_; }
  bool is_rep_string() const { return string_ && rep_; }
  bool is_branch() const { return branch_; }
  RepCondition rep_condition() const { return rep_condition_; }
  // The part of RCX a REP prefix counts with (the address size).
  std::uint64_t count_mask() const { return count_mask_; }

  // The accesses made, given the registers after the instruction (or after the iterations of a
  // REP string instruction that ran). Returns the number written to `out`.
  std::size_t resolve(const kvm_regs& before, const kvm_regs& after,
                      std::span<MemoryAccess, kMax> out) const;
  // Whether the instruction completed (or did some REP iterations) rather than faulting:
  // RIP moved to the next instruction, a branch went somewhere, or a REP string stayed.
  bool retired(const kvm_regs& before, const kvm_regs& after) const;

 private:
  struct Planned {
    MemoryAccess access;
    bool string_operand = false;  // address is the first iteration's; scaled by iterations
  };
  bool valid_ = false;
  unsigned length_ = 0;
  bool string_ = false;
  bool rep_ = false;
  bool branch_ = false;
  RepCondition rep_condition_ = RepCondition::kNone;
  std::uint64_t count_mask_ = ~std::uint64_t{0};  // address-size mask for RCX
  std::array<Planned, kMax> planned_{};
  std::size_t count_ = 0;
};

}  // namespace drvm::vmm::debug
