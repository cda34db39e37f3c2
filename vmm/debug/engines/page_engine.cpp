#include "vmm/debug/engines/page_engine.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "bpcore/attributes.hpp"

namespace drvm::vmm::debug {

Engine PageEngine::arm(unsigned slot, std::uint64_t gpa, const bp::BpAttr& attr,
                       const ProbeResult& can) {
  const bool write_only = attr.type == bp::BpType::kWrite && can.readonly_mem.yes();
  const PageAccess access = write_only ? PageAccess::kReadOnly : PageAccess::kUnmapped;
  page_of_slot_[slot] = PageGuard::page_of(gpa);
  access_of_slot_[slot] = access;
  pages_.add(page_of_slot_[slot], access);
  slots_ |= std::uint64_t{1} << slot;
  return write_only ? Engine::kReadOnlyPage : Engine::kUnmappedPage;
}

void PageEngine::guard_tables(const GuestMemory& memory, const kvm_sregs& sregs,
                              std::uint64_t linear) {
  const TablePages walk = translate(memory, PagingState::from(sregs), linear).tables;
  for (unsigned i = 0; i < walk.count; ++i) {
    const std::uint64_t page = walk.page[i];
    if (std::find(guarded_tables_.begin(), guarded_tables_.end(), page) != guarded_tables_.end()) {
      continue;
    }
    guarded_tables_.push_back(page);
    pages_.add(page, PageAccess::kReadOnly);
    ++tables_.references[page];
  }
}

void PageEngine::disarm() {
  for (std::uint64_t m = slots_; m; m &= m - 1) {
    const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
    pages_.remove(page_of_slot_[slot], access_of_slot_[slot]);
    page_of_slot_[slot] = kNoAddress;
  }
  slots_ = 0;
  for (std::uint64_t page : guarded_tables_) {
    pages_.remove(page, PageAccess::kReadOnly);
    if (--tables_.references[page] == 0) tables_.references.erase(page);
  }
  guarded_tables_.clear();
}

std::optional<CompletedAccess> PageEngine::complete(GuestMemory& memory, kvm_run& run) {
  CompletedAccess access;
  access.gpa = run.mmio.phys_addr;
  access.size = std::min<std::uint32_t>(run.mmio.len, sizeof run.mmio.data);
  access.write = run.mmio.is_write != 0;
  std::byte* host = memory.host(access.gpa, access.size);
  if (host == nullptr) return std::nullopt;  // a device, not RAM
  std::memcpy(&access.old_value, host, access.size);
  if (access.write) {
    std::memcpy(host, run.mmio.data, access.size);
    std::memcpy(&access.new_value, run.mmio.data, access.size);
    access.table_edit = access.old_value != access.new_value &&
                        tables_.references.count(PageGuard::page_of(access.gpa)) != 0;
  } else {
    std::memcpy(run.mmio.data, host, access.size);
  }
  return access;
}

AccessMatch PageEngine::match(const bp::EffectiveSet& eff, const CompletedAccess& access) const {
  AccessMatch out;
  const std::uint64_t page = PageGuard::page_of(access.gpa);
  const bp::Access type = access.write ? bp::Access::kWrite : bp::Access::kRead;
  for (std::uint64_t m = slots_; m; m &= m - 1) {
    const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
    if (page_of_slot_[slot] != page) continue;
    // The watch's linear page maps to `page`: the access's linear address is at the same offset.
    const std::uint64_t linear =
        (eff.slot_attr[slot].addr & ~std::uint64_t{4095}) + (access.gpa - page);
    if (!bp::matches(eff.slot_attr[slot], linear, access.size, type)) continue;
    out.slots |= std::uint64_t{1} << slot;
    if (!out.first) {
      out.first = AccessInfo{type, linear, access.size, std::nullopt, std::nullopt};
      if (access.write) {
        out.first->old_value = access.old_value;
        out.first->new_value = access.new_value;
      }
    }
  }
  return out;
}

void PageEngine::open_for_step(std::uint64_t page) {
  pages_.open_temporarily(page);
  open_page_ = page;
}

void PageEngine::close_after_step() {
  if (open_page_ == kNoAddress) return;
  pages_.close_again(open_page_);
  open_page_ = kNoAddress;
}

}  // namespace drvm::vmm::debug
