// The guest physical address space as KVM sees it: RAM backed by GuestMemory, cut into memslots.
// It starts as one slot; set_access() splits a range into its own slot(s) that are read-only
// (guest writes exit as KVM_EXIT_MMIO) or absent (every access exits as KVM_EXIT_MMIO, fetches
// fail), and merges neighbours again when the access returns to normal. The debug engines use this
// for page-protection watchpoints. Change the map only while every vCPU is outside KVM_RUN.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "vmm/kvm/guest_memory.hpp"
#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {

enum class PageAccess : std::uint8_t {
  kReadWrite,  // ordinary RAM
  kReadOnly,   // KVM_MEM_READONLY slot
  kUnmapped,   // no slot: a hole
};

class MemoryMap {
 public:
  static constexpr std::uint64_t kPageSize = 4096;
  // Receives every slot change: deletions (size 0) first, then installations.
  using SlotInstaller = std::function<void(const Memslot&)>;

  // Installs one read-write slot covering all of memory.
  MemoryMap(GuestMemory& memory, SlotInstaller installer);
  // Convenience: installs into vm.
  MemoryMap(GuestMemory& memory, Vm& vm);

  // Sets the access of the page-aligned range [gpa, gpa + size) (size a multiple of 4 KiB, inside
  // RAM; throws std::invalid_argument otherwise). Touches only the slots around the range.
  void set_access(std::uint64_t gpa, std::uint64_t size, PageAccess access);
  PageAccess access(std::uint64_t gpa) const;

  struct Region {
    std::uint64_t gpa;
    std::uint64_t size;
    PageAccess access;
    std::uint32_t slot;  // meaningless for kUnmapped
  };
  // Current regions in address order (adjacent regions always differ in access).
  std::vector<Region> regions() const;
  std::size_t slot_count() const;

 private:
  std::uint32_t allocate_slot();

  GuestMemory& memory_;
  SlotInstaller installer_;
  std::map<std::uint64_t, Region> regions_;  // keyed by gpa, covering [0, memory size)
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t next_slot_ = 0;
};

}  // namespace drvm::vmm
