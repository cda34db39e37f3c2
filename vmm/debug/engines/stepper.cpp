#include "vmm/debug/engines/stepper.hpp"

#include <bit>

#include "vmm/debug/flags_instructions.hpp"
#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {

DecodedAccesses Stepper::decode_at(const kvm_regs& regs, const kvm_sregs& sregs) const {
  std::array<std::uint8_t, kMaxInstruction> bytes{};
  const std::size_t size = sites_.fetch_instruction(regs, sregs, bytes);
  return DecodedAccesses::decode(std::span(bytes.data(), size), regs, sregs);
}

void Stepper::begin(const kvm_regs& regs, const kvm_sregs& sregs, bool tf, bool whole_vcpu,
                    const bp::EffectiveSet& eff, std::uint64_t data_slots) {
  guest_tf = tf;
  tf_after = tf;
  if (!whole_vcpu) {
    std::array<std::uint8_t, kMaxInstruction> bytes{};
    const std::size_t size = sites_.fetch_instruction(regs, sregs, bytes);
    if (const auto loaded = tf_loaded_by(std::span(bytes.data(), size), regs, sregs)) {
      tf_after = *loaded;
    }
  }
  before_ = regs;
  decoded_ = false;
  const auto gpa = linear_to_gpa(memory_, sregs, sregs.cs.base + regs.rip);
  if (!gpa) return;
  std::uint64_t page = PageGuard::page_of(*gpa);
  if (pages_.wanted(page) != PageAccess::kUnmapped && !whole_vcpu) {
    if (const auto operand = system_operand_page(regs, sregs)) {
      page = *operand;  // opened for the step; the decode reports the access
    } else {
      // A debugger's step of a REP string instruction runs one iteration, as the processor's TF
      // step does. The page engines report its accesses: the decode only serves the cut.
      if (for_debugger) {
        kvm_regs cut = regs;
        if (cut_rep(cut, decode_at(regs, sregs))) before_ = cut;
      }
      return;
    }
  }
  if (!whole_vcpu) page_engine_.open_for_step(page);
  decode_ = decode_at(regs, sregs);
  decoded_ = decode_.valid();
  kvm_regs cut = regs;
  if (decoded_ && iterations_observed(regs, eff, data_slots) && cut_rep(cut, decode_)) {
    before_ = cut;
  }
}

StepAccesses Stepper::end(const kvm_regs& after) {
  int3_.replant();
  page_engine_.close_after_step();
  hardware_.end_step();
  over = false;
  StepAccesses out;
  if (decoded_ && decode_.retired(before_, after)) {
    out.count = decode_.resolve(before_, after, out.list);
  }
  decoded_ = false;
  return out;
}

std::optional<bool> Stepper::tf_loaded_by(std::span<const std::uint8_t> bytes, const kvm_regs& regs,
                                          const kvm_sregs& sregs) {
  std::size_t i = 0;
  while (i < bytes.size() && (bytes[i] == 0x66 || (bytes[i] & 0xf0) == 0x40)) ++i;
  if (i >= bytes.size() || (bytes[i] != 0x9d && bytes[i] != 0xcf)) return std::nullopt;
  const auto loaded = emulate_flags_instruction(bytes, regs, sregs, memory_);
  if (!loaded) return std::nullopt;
  return (loaded->regs.rflags & x86::kRflagsTf) != 0;
}

std::optional<std::uint64_t> Stepper::system_operand_page(const kvm_regs& regs,
                                                          const kvm_sregs& sregs) {
  std::array<std::uint8_t, kMaxInstruction> bytes{};
  const std::size_t size = sites_.fetch_instruction(regs, sregs, bytes);
  if (!is_system_instruction(bytes.data(), size, in_64bit_mode(sregs))) return std::nullopt;
  const auto decoded = DecodedAccesses::decode(std::span(bytes.data(), size), regs, sregs);
  std::array<MemoryAccess, DecodedAccesses::kMax> accesses{};
  const std::size_t count = decoded.valid() ? decoded.resolve(regs, regs, accesses) : 0;
  for (std::size_t i = 0; i < count; ++i) {
    for (std::uint64_t linear : {accesses[i].linear, accesses[i].linear + accesses[i].size - 1}) {
      const auto gpa = linear_to_gpa(memory_, sregs, linear);
      if (gpa && pages_.guarded(PageGuard::page_of(*gpa))) return PageGuard::page_of(*gpa);
    }
  }
  return std::nullopt;
}

bool Stepper::iterations_observed(const kvm_regs& regs, const bp::EffectiveSet& eff,
                                  std::uint64_t data_slots) const {
  if (!decode_.is_rep_string()) return false;
  if (guest_tf || for_debugger) return true;
  kvm_regs finished = regs;
  finished.rcx &= ~decode_.count_mask();
  std::array<MemoryAccess, DecodedAccesses::kMax> accesses{};
  const std::size_t count = decode_.resolve(regs, finished, accesses);
  for (std::size_t i = 0; i < count; ++i) {
    const MemoryAccess& access = accesses[i];
    if (eff.slots_matching(data_slots, access.linear, access.size, access.type)) return true;
  }
  return false;
}

bool Stepper::cut_rep(kvm_regs& regs, const DecodedAccesses& decoded) {
  const std::uint64_t mask = decoded.count_mask();
  if (rep_cut_.active || !decoded.is_rep_string() || (regs.rcx & mask) <= 1) return false;
  rep_cut_ = RepCut{true, regs.rip, regs.rcx, decoded.length(), mask, decoded.rep_condition()};
  regs.rcx = (regs.rcx & ~mask) | 1;
  registers_.set_regs(regs);
  return true;
}

void Stepper::cut_rep_at_rip() {
  kvm_regs regs = registers_.regs();
  const kvm_sregs sregs = registers_.sregs();
  cut_rep(regs, decode_at(regs, sregs));
}

void Stepper::resume_cut_rep(kvm_regs& regs) {
  if (!rep_cut_.active) return;
  const RepCut cut = rep_cut_;
  rep_cut_.active = false;
  // KVM may leave RIP at the instruction after its final iteration (retire_finished_rep).
  const bool iterated =
      (regs.rip == cut.rip + cut.length || regs.rip == cut.rip) && (regs.rcx & cut.mask) == 0;
  if (iterated) {
    const std::uint64_t remaining = ((cut.rcx & cut.mask) - 1) & cut.mask;
    regs.rcx = (cut.rcx & ~cut.mask) | remaining;
    const bool zf = (regs.rflags & x86::kRflagsZf) != 0;
    const bool ended = (cut.condition == RepCondition::kWhileEqual && !zf) ||
                       (cut.condition == RepCondition::kWhileNotEqual && zf);
    if (remaining != 0 && !ended) {
      regs.rip = cut.rip;
      regs.rflags |= x86::kRflagsRf;
    } else {
      regs.rip = cut.rip + cut.length;
      regs.rflags &= ~x86::kRflagsRf;
    }
  } else if ((regs.rcx & cut.mask) == 1) {
    regs.rcx = cut.rcx;  // the iteration faulted: nothing was counted
  } else {
    return;
  }
  registers_.set_regs(regs);
}

void Stepper::retire_finished_rep(kvm_regs& regs, const kvm_sregs& sregs) {
  const DecodedAccesses decoded = decode_at(regs, sregs);
  if (!decoded.valid() || !decoded.is_rep_string() || (regs.rcx & decoded.count_mask()) != 0) {
    return;
  }
  regs.rip += decoded.length();
  registers_.set_regs(regs);
}

}  // namespace drvm::vmm::debug
