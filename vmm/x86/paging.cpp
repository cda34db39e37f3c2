#include "vmm/x86/paging.hpp"

#include <algorithm>
#include <cstring>

namespace drvm::vmm {

namespace {

constexpr std::uint64_t kPresent = 1u << 0;
constexpr std::uint64_t kWritable = 1u << 1;
constexpr std::uint64_t kUser = 1u << 2;
constexpr std::uint64_t kLargePage = 1u << 7;
// Physical-address bits of a 64-bit paging entry (bits 51:12).
constexpr std::uint64_t kAddressMask = 0x000ffffffffff000ULL;

// A 32- or 64-bit paging entry at `gpa`; false when it lies outside RAM.
template <typename Entry>
bool read_entry(const PhysicalMemory& memory, std::uint64_t gpa, Entry& entry) {
  std::byte raw[sizeof(Entry)];
  if (!memory.read(gpa, raw)) return false;
  std::memcpy(&entry, raw, sizeof entry);
  return true;
}

// Reads the paging entry (32 or 64 bits) at `gpa` for `level`, recording its table page `table`;
// false, with the walk's error and level in `result`, when it lies outside RAM or is not present.
template <typename Entry>
bool read_present_entry(const PhysicalMemory& memory, std::uint64_t table, std::uint64_t gpa,
                        int level, Entry& entry, Translation& result) {
  result.tables.add(table);
  if (!read_entry(memory, gpa, entry)) {
    result.error = WalkError::kTableOutsideRam;
  } else if ((entry & kPresent) != 0) {
    return true;
  } else {
    result.error = WalkError::kNotPresent;
  }
  result.failed_level = level;
  return false;
}

// Walks 64-bit entries (PAE or long mode) from table at level `level` down to the page.
void walk64(const PhysicalMemory& memory, std::uint64_t table, int level, std::uint64_t linear,
            Translation& result) {
  result.writable = true;
  result.user = true;
  for (; level >= 1; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    const std::uint64_t index = (linear >> shift) & 0x1ff;
    std::uint64_t entry = 0;
    if (!read_present_entry(memory, table & kAddressMask, (table & kAddressMask) + index * 8, level,
                            entry, result)) {
      return;
    }
    result.writable = result.writable && (entry & kWritable) != 0;
    result.user = result.user && (entry & kUser) != 0;
    const bool large = (level == 2 || level == 3) && (entry & kLargePage) != 0;
    if (large || level == 1) {
      const std::uint64_t page_size = std::uint64_t{1} << shift;
      // Large-page entries keep PAT in bit 12; the frame starts at the page-size boundary.
      const std::uint64_t frame = entry & kAddressMask & ~(page_size - 1);
      if (large && ((entry & kAddressMask) & (page_size - 1) & ~std::uint64_t{0x1000}) != 0) {
        result.error = WalkError::kReservedBits;
        result.failed_level = level;
        return;
      }
      result.gpa = frame | (linear & (page_size - 1));
      result.page_size = page_size;
      return;
    }
    table = entry;
  }
}

Translation walk32(const PhysicalMemory& memory, const PagingState& paging, std::uint64_t linear) {
  Translation result;
  std::uint32_t pde = 0;
  if (!read_present_entry(memory, paging.cr3 & 0xfffff000u,
                          (paging.cr3 & 0xfffff000u) + ((linear >> 22) & 0x3ff) * 4, 2, pde,
                          result)) {
    return result;
  }
  if (paging.pse() && (pde & kLargePage) != 0) {
    // 4 MiB page: bits 31:22 of the frame, plus PSE-36 high bits 20:13 as bits 39:32.
    const std::uint64_t frame =
        (pde & 0xffc00000u) | (static_cast<std::uint64_t>((pde >> 13) & 0xff) << 32);
    result.gpa = frame | (linear & 0x3fffff);
    result.page_size = 0x400000;
    result.writable = (pde & kWritable) != 0;
    result.user = (pde & kUser) != 0;
    return result;
  }
  std::uint32_t pte = 0;
  if (!read_present_entry(memory, pde & 0xfffff000u,
                          (pde & 0xfffff000u) + ((linear >> 12) & 0x3ff) * 4, 1, pte, result)) {
    return result;
  }
  result.gpa = (pte & 0xfffff000u) | (linear & 0xfff);
  result.page_size = 0x1000;
  result.writable = (pde & kWritable) != 0 && (pte & kWritable) != 0;
  result.user = (pde & kUser) != 0 && (pte & kUser) != 0;
  return result;
}

}  // namespace

std::string to_string(WalkError error) {
  switch (error) {
    case WalkError::kNone:
      return "mapped";
    case WalkError::kNotPresent:
      return "not present in the guest page tables";
    case WalkError::kNonCanonical:
      return "non-canonical address";
    case WalkError::kTableOutsideRam:
      return "page tables point outside guest RAM";
    case WalkError::kOutOfRange:
      return "above 4 GiB with 32-bit addressing";
    case WalkError::kReservedBits:
      return "reserved bits set in a paging entry";
  }
  return "unknown walk error";
}

Translation translate(const PhysicalMemory& memory, const PagingState& paging,
                      std::uint64_t linear) {
  Translation result;
  if (paging.long_mode()) {
    const unsigned bits = paging.la57() ? 57 : 48;
    const auto sign_extended =
        static_cast<std::uint64_t>(static_cast<std::int64_t>(linear << (64 - bits)) >> (64 - bits));
    if (sign_extended != linear) {
      result.error = WalkError::kNonCanonical;
      return result;
    }
  } else if (linear > 0xffffffffULL) {
    result.error = WalkError::kOutOfRange;
    return result;
  }
  if (!paging.paging()) {
    result.gpa = linear;
    result.page_size = 0x1000;
    result.writable = true;
    result.user = true;
  } else if (paging.long_mode()) {
    walk64(memory, paging.cr3, paging.la57() ? 5 : 4, linear, result);
  } else if (paging.pae()) {
    // PAE: CR3 points at four PDPTEs (32-byte aligned); each PDPTE has only P as a permission.
    std::uint64_t pdpte = 0;
    if (!read_present_entry(memory, paging.cr3,
                            (paging.cr3 & 0xffffffe0u) + ((linear >> 30) & 3) * 8, 3, pdpte,
                            result)) {
      return result;
    }
    walk64(memory, pdpte, 2, linear, result);
  } else {
    result = walk32(memory, paging, linear);
  }
  if (result.ok()) {
    std::byte probe[1];
    if (!memory.read(result.gpa, probe)) result.error = WalkError::kTableOutsideRam;
  }
  return result;
}

std::vector<std::uint64_t> all_paging_structure_pages(const PhysicalMemory& memory,
                                                      const PagingState& paging,
                                                      std::size_t limit) {
  std::vector<std::uint64_t> pages;
  if (!paging.paging()) return pages;
  if (!paging.pae()) {  // 32-bit paging: the PD and every PT it points to
    const std::uint64_t pd = paging.cr3 & 0xfffff000u;
    pages.push_back(pd);
    for (unsigned i = 0; i < 1024 && pages.size() < limit; ++i) {
      std::uint32_t pde = 0;
      if (read_entry(memory, pd + i * 4, pde) && (pde & kPresent) &&
          !((pde & kLargePage) && paging.pse())) {
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
      pending.push_back({paging.cr3 & kAddressMask, paging.la57() ? 5u : 4u});
    } else {
      pending.push_back({paging.cr3 & 0xffffffe0u, 3});  // the 32-byte PAE PDPT
    }
    while (!pending.empty() && pages.size() < limit) {
      const Table table = pending.back();
      pending.pop_back();
      pages.push_back(table.gpa & ~std::uint64_t{0xfff});
      if (table.level == 1) continue;
      const unsigned entries = table.level == 3 && !paging.long_mode() ? 4 : 512;
      for (unsigned i = 0; i < entries; ++i) {
        std::uint64_t entry = 0;
        if (!read_entry(memory, table.gpa + i * 8u, entry) || !(entry & kPresent)) continue;
        const bool large =
            (table.level == 2 || (table.level == 3 && paging.long_mode())) && (entry & kLargePage);
        // Bounded: a table that points to itself (or a huge hierarchy) stops at `limit`.
        if (!large && pages.size() + pending.size() < limit) {
          pending.push_back({entry & kAddressMask, table.level - 1});
        }
      }
    }
  }
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  return pages;
}

namespace {

template <typename Bytes, typename Transfer>
VirtualAccess transfer_virtual(const PhysicalMemory& memory, const PagingState& paging,
                               std::uint64_t linear, Bytes bytes, Transfer transfer) {
  VirtualAccess access;
  while (access.transferred < bytes.size()) {
    const std::uint64_t address = linear + access.transferred;
    const Translation translation = translate(memory, paging, address);
    if (!translation.ok()) {
      access.error = translation.error;
      access.failed_at = address;
      return access;
    }
    // Stay within the 4 KiB page even inside a large page: simple and always correct.
    const std::size_t chunk =
        std::min<std::size_t>(bytes.size() - access.transferred, 0x1000 - (address & 0xfff));
    if (!transfer(translation.gpa, bytes.subspan(access.transferred, chunk))) {
      access.error = WalkError::kTableOutsideRam;
      access.failed_at = address;
      return access;
    }
    access.transferred += chunk;
  }
  return access;
}

}  // namespace

VirtualAccess read_virtual(const PhysicalMemory& memory, const PagingState& paging,
                           std::uint64_t linear, std::span<std::byte> out) {
  return transfer_virtual(
      memory, paging, linear, out,
      [&memory](std::uint64_t gpa, std::span<std::byte> chunk) { return memory.read(gpa, chunk); });
}

VirtualAccess write_virtual(PhysicalMemory& memory, const PagingState& paging, std::uint64_t linear,
                            std::span<const std::byte> in) {
  return transfer_virtual(memory, paging, linear, in,
                          [&memory](std::uint64_t gpa, std::span<const std::byte> chunk) {
                            return memory.write(gpa, chunk);
                          });
}

}  // namespace drvm::vmm
