// What the engines share: the engine kinds, the data access an engine observed, and guest address
// translation for the vCPU at hand. docs/dr-virtualization.md describes each engine.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>

#include "bpcore/attributes.hpp"
#include "vmm/kvm/guest_memory.hpp"
#include "vmm/x86/paging.hpp"

namespace drvm::vmm::debug {

// How an effective slot is made to fire.
enum class Engine : std::uint8_t {
  kNone,      // slot unused
  kHardware,  // a KVM_SET_GUEST_DEBUG hardware slot (DR0-DR3): engines/hardware_engine.hpp
  kInt3,      // instruction breakpoint: INT3 planted over the first byte: engines/int3_engine.hpp
  kReadOnlyPage,  // write watchpoint: the page's memslot is read-only: engines/page_engine.hpp
  kUnmappedPage,  // read or read/write watchpoint: the page has no memslot: engines/page_engine.hpp
  kSingleStep,    // every instruction is single-stepped and checked: engines/stepping_mode.hpp
};
const char* engine_name(Engine engine);

// One data access an engine observed (for data breakpoints).
struct AccessInfo {
  bp::Access type = bp::Access::kRead;
  std::uint64_t linear = 0;  // guest linear address of the first byte
  std::uint32_t size = 0;    // bytes (<= 8 per access; a REP string reports each element)
  // Writes of at most 8 bytes through the page engines or --exact: the memory before and after.
  std::optional<std::uint64_t> old_value;
  std::optional<std::uint64_t> new_value;
};

// The guest-physical address of `linear` under `sregs`' paging, when all `size` bytes are RAM.
inline std::optional<std::uint64_t> linear_to_gpa(const GuestMemory& memory, const kvm_sregs& sregs,
                                                  std::uint64_t linear, std::uint32_t size = 1) {
  const Translation t = translate(memory, PagingState::from(sregs), linear);
  if (!t.ok() || !memory.contains(t.gpa, size)) return std::nullopt;
  return t.gpa;
}

inline constexpr std::uint64_t kNoAddress = ~std::uint64_t{0};
inline constexpr unsigned kMaxInstruction = 15;

}  // namespace drvm::vmm::debug
