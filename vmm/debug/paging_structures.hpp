// The guest pages that hold the paging structures translating a linear address (PML5/PML4, PDPT,
// PD, PT, as far as the walk goes). drvm write-protects them while a watch or planted breakpoint
// depends on the translation, so that a page-table edit re-translates it
// (docs/dr-virtualization.md).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "vmm/guest_memory.hpp"
#include "vmm/paging.hpp"

namespace drvm::vmm::debug {

struct PagingStructurePages {
  std::array<std::uint64_t, 5> page{};  // page-aligned GPAs, from the top level down
  unsigned count = 0;
};

// Empty with paging off. Stops at a not-present entry, a large page, or a table outside RAM.
PagingStructurePages paging_structure_pages(const PhysicalMemory& memory, const PagingState& paging,
                                            std::uint64_t linear);

// Every page that holds a paging structure reachable from CR3 (tables, not the pages they map),
// sorted, at most `limit` of them: KVM walks these itself, so a page engine must never protect one
// a walk needs. Empty with paging off.
std::vector<std::uint64_t> all_paging_structure_pages(const PhysicalMemory& memory,
                                                      const PagingState& paging,
                                                      std::size_t limit = 1u << 16);

}  // namespace drvm::vmm::debug
