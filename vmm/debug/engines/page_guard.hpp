// Page protection for the memory engines, VM-wide: each watched guest page is read-only (write
// watchpoints) or unmapped (read and read/write watchpoints) while any vCPU's watch needs it. Holds
// a reference count per page and reason and applies only changes to the MemoryMap. Not
// thread-safe: the controller's lock guards it.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "vmm/kvm/memory_map.hpp"

namespace drvm::vmm::debug {

class PageGuard {
 public:
  explicit PageGuard(MemoryMap& map) : map_(map) {}

  static std::uint64_t page_of(std::uint64_t gpa) { return gpa & ~(MemoryMap::kPageSize - 1); }

  // Adds or drops one reference for `page` (page-aligned GPA) wanting `access`.
  void add(std::uint64_t page, PageAccess access);
  void remove(std::uint64_t page, PageAccess access);

  // The protection drvm keeps on `page` (kReadWrite when none).
  PageAccess wanted(std::uint64_t page) const;
  bool guarded(std::uint64_t page) const { return pages_.count(page) != 0; }

  // Maps a page back for one instruction (an instruction fetched from an unmapped page) and
  // restores its protection afterwards.
  void open_temporarily(std::uint64_t page);
  void close_again(std::uint64_t page);

 private:
  struct Refs {
    std::uint32_t read_only = 0;
    std::uint32_t unmapped = 0;
    bool open = false;
  };
  static PageAccess access_of(const Refs& refs);
  void apply(std::uint64_t page, PageAccess before, PageAccess after);

  MemoryMap& map_;
  std::unordered_map<std::uint64_t, Refs> pages_;
};

}  // namespace drvm::vmm::debug
