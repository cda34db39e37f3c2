#include "vmm/debug/paging_structures.hpp"

#include <algorithm>
#include <cstring>

namespace drvm::vmm::debug {
namespace {

constexpr std::uint64_t kPresent = 1;
constexpr std::uint64_t kLargePage = 1u << 7;
constexpr std::uint64_t kAddress = 0x000ffffffffff000ull;
constexpr std::uint64_t kPageMask = ~std::uint64_t{4095};

std::uint64_t read_entry(const PhysicalMemory& memory, std::uint64_t gpa, unsigned size, bool& ok) {
  std::uint64_t value = 0;
  ok = memory.read(gpa, std::as_writable_bytes(std::span(&value, 1)).first(size));
  return value;
}

}  // namespace

PagingStructurePages paging_structure_pages(const PhysicalMemory& memory, const PagingState& paging,
                                            std::uint64_t linear) {
  PagingStructurePages pages;
  if (!paging.paging()) return pages;
  bool ok = true;
  if (!paging.pae()) {  // 32-bit paging: PD, then PT unless a 4 MiB page
    const std::uint64_t pd = paging.cr3 & 0xfffff000u;
    pages.page[pages.count++] = pd;
    const std::uint64_t pde = read_entry(memory, pd + ((linear >> 22) & 1023) * 4, 4, ok);
    if (ok && (pde & kPresent) && !((pde & kLargePage) && paging.pse())) {
      pages.page[pages.count++] = pde & 0xfffff000u;
    }
    return pages;
  }
  unsigned level = 3;  // PAE: PDPT (32 bytes at CR3), PD, PT
  std::uint64_t table = paging.cr3 & 0xffffffe0u;
  if (paging.long_mode()) {
    level = paging.la57() ? 5 : 4;
    table = paging.cr3 & kAddress;
  }
  for (;; --level) {
    pages.page[pages.count++] = table & kPageMask;
    const unsigned index = level == 3 && !paging.long_mode()
                               ? (linear >> 30) & 3
                               : (linear >> (12 + 9 * (level - 1))) & 511;
    const std::uint64_t entry = read_entry(memory, table + index * 8u, 8, ok);
    if (!ok || level == 1 || !(entry & kPresent)) break;
    if ((level == 2 || (level == 3 && paging.long_mode())) && (entry & kLargePage)) break;
    table = entry & kAddress;
  }
  return pages;
}

std::vector<std::uint64_t> all_paging_structure_pages(const PhysicalMemory& memory,
                                                      const PagingState& paging,
                                                      std::size_t limit) {
  std::vector<std::uint64_t> pages;
  if (!paging.paging()) return pages;
  bool ok = true;
  if (!paging.pae()) {  // 32-bit paging: the PD and every PT it points to
    const std::uint64_t pd = paging.cr3 & 0xfffff000u;
    pages.push_back(pd);
    for (unsigned i = 0; i < 1024 && pages.size() < limit; ++i) {
      const std::uint64_t pde = read_entry(memory, pd + i * 4, 4, ok);
      if (ok && (pde & kPresent) && !((pde & kLargePage) && paging.pse())) {
        pages.push_back(pde & 0xfffff000u);
      }
    }
  } else {
    struct Table {
      std::uint64_t gpa;
      unsigned level;
    };
    std::vector<Table> pending;
    if (paging.long_mode()) {
      pending.push_back({paging.cr3 & kAddress, paging.la57() ? 5u : 4u});
    } else {
      pending.push_back({paging.cr3 & 0xffffffe0u, 3});  // the 32-byte PAE PDPT
    }
    while (!pending.empty() && pages.size() < limit) {
      const Table table = pending.back();
      pending.pop_back();
      pages.push_back(table.gpa & kPageMask);
      if (table.level == 1) continue;
      const unsigned entries = table.level == 3 && !paging.long_mode() ? 4 : 512;
      for (unsigned i = 0; i < entries; ++i) {
        const std::uint64_t entry = read_entry(memory, table.gpa + i * 8u, 8, ok);
        if (!ok || !(entry & kPresent)) continue;
        const bool large =
            (table.level == 2 || (table.level == 3 && paging.long_mode())) && (entry & kLargePage);
        // Bounded: a table that points to itself (or a huge hierarchy) stops at `limit`.
        if (!large && pages.size() + pending.size() < limit) {
          pending.push_back({entry & kAddress, table.level - 1});
        }
      }
    }
  }
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  return pages;
}

}  // namespace drvm::vmm::debug
