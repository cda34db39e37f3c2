#include "vmm/debug/paging_structures.hpp"

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

}  // namespace drvm::vmm::debug
