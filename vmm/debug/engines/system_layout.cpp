#include "vmm/debug/engines/system_layout.hpp"

#include <algorithm>
#include <bit>

#include "bpcore/types.hpp"
#include "vmm/debug/engines/engine.hpp"
#include "vmm/debug/engines/hardware_engine.hpp"
#include "vmm/x86/paging.hpp"

namespace drvm::vmm::debug {
namespace {

// Bytes below the 16-byte aligned RSP an exception frame may take (SS, RSP, RFLAGS, CS, RIP and
// an error code in 64-bit mode), with room to spare.
constexpr std::uint64_t kFrameReach = 64;

// Appends the guest-physical pages of linear [linear, linear + size) that translate.
void add_pages(const GuestMemory& memory, const kvm_sregs& sregs, std::uint64_t linear,
               std::uint64_t size, std::vector<std::uint64_t>& out) {
  constexpr std::uint64_t kMaxPages = 17;  // a 64 KiB table, unaligned
  const std::uint64_t first = linear & ~std::uint64_t{4095};
  const std::uint64_t last = (linear + std::max<std::uint64_t>(size, 1) - 1) & ~std::uint64_t{4095};
  for (std::uint64_t at = first, n = 0; n < kMaxPages; at += 4096, ++n) {
    if (const auto gpa = linear_to_gpa(memory, sregs, std::max(at, linear))) {
      out.push_back(PageGuard::page_of(*gpa));
    }
    if (at == last) break;
  }
}

}  // namespace

std::vector<std::uint64_t> system_structure_pages(const GuestMemory& memory, const kvm_sregs& sregs,
                                                  const kvm_regs& regs) {
  std::vector<std::uint64_t> pages;
  add_pages(memory, sregs, sregs.gdt.base, std::uint64_t{sregs.gdt.limit} + 1, pages);
  add_pages(memory, sregs, sregs.idt.base, std::uint64_t{sregs.idt.limit} + 1, pages);
  for (const kvm_segment* table : {&sregs.ldt, &sregs.tr}) {
    if (table->present && !table->unusable) {
      add_pages(memory, sregs, table->base, std::min<std::uint64_t>(table->limit, 0xffff) + 1,
                pages);
    }
  }
  const std::uint64_t top = regs.rsp & ~std::uint64_t{15};
  add_pages(memory, sregs, top - kFrameReach, kFrameReach + 8, pages);
  return pages;
}

bool layout_needs_stepping(const GuestMemory& memory, const bp::EffectiveSet& eff,
                           const kvm_sregs& sregs, const kvm_regs& regs, const ProbeResult& can) {
  std::vector<std::uint64_t> watched;  // pages the page engines would protect
  std::vector<std::uint64_t> walked;   // paging-structure pages PageEngine::guard_tables would
  unsigned hw_used = 0;
  for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
    const bp::BpAttr& attr = eff.slot_attr[static_cast<unsigned>(std::countr_zero(m))];
    if (HardwareEngine::can_serve(attr, can) && hw_used < bp::kX86HardwareSlots) {
      ++hw_used;
      continue;
    }
    const auto gpa = linear_to_gpa(memory, sregs, attr.addr, attr.len);
    if (!gpa) continue;
    const TablePages walk = translate(memory, PagingState::from(sregs), attr.addr).tables;
    walked.insert(walked.end(), walk.page.begin(), walk.page.begin() + walk.count);
    if (attr.type != bp::BpType::kExecute) watched.push_back(PageGuard::page_of(*gpa));
  }
  if (watched.empty() && walked.empty()) return false;
  const std::vector<std::uint64_t> system = system_structure_pages(memory, sregs, regs);
  const auto is_system = [&](std::uint64_t page) {
    return std::find(system.begin(), system.end(), page) != system.end();
  };
  if (std::any_of(walked.begin(), walked.end(), is_system)) return true;
  if (watched.empty()) return false;
  if (std::any_of(watched.begin(), watched.end(), is_system)) return true;
  const std::vector<std::uint64_t> tables =
      all_paging_structure_pages(memory, PagingState::from(sregs));
  return std::any_of(watched.begin(), watched.end(), [&](std::uint64_t page) {
    return std::binary_search(tables.begin(), tables.end(), page);
  });
}

bool frame_on_guarded_page(const GuestMemory& memory, const PageGuard& pages,
                           const kvm_sregs& sregs, const kvm_regs& regs) {
  const std::uint64_t top = regs.rsp & ~std::uint64_t{15};
  for (std::uint64_t linear : {top - kFrameReach, top - 1}) {
    const auto gpa = linear_to_gpa(memory, sregs, linear);
    if (gpa && pages.guarded(PageGuard::page_of(*gpa))) return true;
  }
  return false;
}

}  // namespace drvm::vmm::debug
