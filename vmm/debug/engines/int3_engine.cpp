#include "vmm/debug/engines/int3_engine.hpp"

namespace drvm::vmm::debug {

bool Int3Engine::arm(unsigned slot, std::uint64_t gpa) {
  if (!code_.instruction_may_start(gpa) || !sites_.add_breakpoint(gpa)) return false;
  site_of_slot_[slot] = gpa;
  return true;
}

void Int3Engine::disarm() {
  for (std::uint64_t& gpa : site_of_slot_) {
    if (gpa != kNoAddress) sites_.remove_breakpoint(gpa);
    gpa = kNoAddress;
  }
}

void Int3Engine::lift(std::uint64_t gpa) {
  const TrapSites::Site* site = sites_.find(gpa);
  if (!site || site->lifted) return;
  sites_.lift(gpa);
  lifted_ = gpa;
}

void Int3Engine::replant() {
  if (lifted_ == kNoAddress) return;
  sites_.replant(lifted_);
  lifted_ = kNoAddress;
}

}  // namespace drvm::vmm::debug
