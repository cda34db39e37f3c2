// Guest virtual-to-physical translation by walking the guest's own page tables, and virtual
// memory reads and writes that cross page boundaries. Supports paging off, 32-bit (with 4 MiB
// pages), PAE, and 4-/5-level long mode with 4 KiB, 2 MiB and 1 GiB pages. Failures are results,
// never crashes: a debugger may ask about any address.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmm/kvm/guest_memory.hpp"

namespace drvm::vmm {

// The control-register state that decides how linear addresses translate.
struct PagingState {
  std::uint64_t cr0 = 0;
  std::uint64_t cr3 = 0;
  std::uint64_t cr4 = 0;
  std::uint64_t efer = 0;

  static PagingState from(const kvm_sregs& sregs) {
    return {sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer};
  }
  bool paging() const { return (cr0 & (1u << 31)) != 0; }
  bool long_mode() const { return (efer & (1u << 10)) != 0; }  // EFER.LMA
  bool pae() const { return (cr4 & (1u << 5)) != 0; }
  bool la57() const { return (cr4 & (1u << 12)) != 0; }
  bool pse() const { return (cr4 & (1u << 4)) != 0; }
};

enum class WalkError : std::uint8_t {
  kNone,
  kNotPresent,       // a paging-structure entry had P=0
  kNonCanonical,     // long mode address with bits 63:48 (or 63:57) not a sign extension
  kTableOutsideRam,  // a paging structure or the final address is not in guest RAM
  kOutOfRange,       // above 4 GiB with 32-bit addressing
  kReservedBits,     // a large-page entry with reserved address bits set
};

std::string to_string(WalkError error);

// The guest pages holding the paging structures a walk read (PML5/PML4, PDPT, PD, PT, from the
// top level down, as far as the walk went). drvm write-protects them while a watch depends on the
// translation, so that a page-table edit re-translates it (docs/dr-virtualization.md).
struct TablePages {
  std::array<std::uint64_t, 5> page{};  // page-aligned GPAs
  unsigned count = 0;
  void add(std::uint64_t gpa) { page[count++] = gpa & ~std::uint64_t{0xfff}; }
};

struct Translation {
  WalkError error = WalkError::kNone;
  std::uint64_t gpa = 0;        // valid when ok()
  std::uint64_t page_size = 0;  // size of the mapping that contains the address
  bool writable = false;        // the combined R/W bits along the walk (true with paging off)
  bool user = false;            // the combined U/S bits along the walk
  int failed_level = 0;         // on kNotPresent: 1 = PTE ... 5 = PML5E
  TablePages tables;            // every table the walk read, also when it failed
  bool ok() const { return error == WalkError::kNone; }
};

Translation translate(const PhysicalMemory& memory, const PagingState& paging,
                      std::uint64_t linear);

// Every page that holds a paging structure reachable from CR3 (tables, not the pages they map),
// sorted, at most `limit` of them: KVM walks these itself, so a page engine must never protect one
// a walk needs. Empty with paging off.
std::vector<std::uint64_t> all_paging_structure_pages(const PhysicalMemory& memory,
                                                      const PagingState& paging,
                                                      std::size_t limit = 1u << 16);

// Reads or writes through the translation, page by page. On failure returns the translation
// error of the first page that failed and sets failed_at to that virtual address; bytes before it
// have been transferred.
struct VirtualAccess {
  WalkError error = WalkError::kNone;
  std::uint64_t failed_at = 0;
  std::size_t transferred = 0;
  bool ok() const { return error == WalkError::kNone; }
};
VirtualAccess read_virtual(const PhysicalMemory& memory, const PagingState& paging,
                           std::uint64_t linear, std::span<std::byte> out);
VirtualAccess write_virtual(PhysicalMemory& memory, const PagingState& paging, std::uint64_t linear,
                            std::span<const std::byte> in);

}  // namespace drvm::vmm
