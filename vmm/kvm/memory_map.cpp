#include "vmm/kvm/memory_map.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace drvm::vmm {

MemoryMap::MemoryMap(GuestMemory& memory, SlotInstaller installer)
    : memory_(memory), installer_(std::move(installer)) {
  const Region all{0, memory.size(), PageAccess::kReadWrite, allocate_slot()};
  regions_.emplace(0, all);
  installer_(Memslot{all.slot, 0, all.size, memory.host_base(), false});
}

MemoryMap::MemoryMap(GuestMemory& memory, Vm& vm)
    : MemoryMap(memory, [&vm](const Memslot& slot) { vm.set_memslot(slot); }) {}

std::uint32_t MemoryMap::allocate_slot() {
  if (!free_slots_.empty()) {
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  return next_slot_++;
}

void MemoryMap::set_access(std::uint64_t gpa, std::uint64_t size, PageAccess access) {
  if (size == 0 || gpa % kPageSize != 0 || size % kPageSize != 0 || !memory_.contains(gpa, size)) {
    throw std::invalid_argument("MemoryMap::set_access: range not page-aligned or outside RAM");
  }
  const std::uint64_t end = gpa + size;
  // The window of regions to rebuild: those overlapping the range plus one neighbour on each
  // side, so that equal neighbours merge.
  auto first = std::prev(regions_.upper_bound(gpa));
  if (first != regions_.begin()) --first;
  auto last = regions_.lower_bound(end);
  if (last != regions_.end()) ++last;

  std::vector<Region> rebuilt;
  auto append = [&rebuilt](std::uint64_t start, std::uint64_t stop, PageAccess kind) {
    if (start >= stop) return;
    if (!rebuilt.empty() && rebuilt.back().access == kind) {
      rebuilt.back().size = stop - rebuilt.back().gpa;
    } else {
      rebuilt.push_back(Region{start, stop - start, kind, 0});
    }
  };
  std::vector<Region> removed;
  for (auto it = first; it != last; ++it) {
    const Region& old = it->second;
    const std::uint64_t old_end = old.gpa + old.size;
    append(old.gpa, std::min(old_end, gpa), old.access);
    append(std::max(old.gpa, gpa), std::min(old_end, end), access);
    append(std::max(old.gpa, end), old_end, old.access);
    removed.push_back(old);
  }
  // Keep slots whose region is unchanged; delete the rest before installing (KVM refuses
  // overlapping slots).
  auto same = [](const Region& a, const Region& b) {
    return a.gpa == b.gpa && a.size == b.size && a.access == b.access;
  };
  for (auto& region : rebuilt) {
    for (const Region& old : removed) {
      if (same(region, old)) region.slot = old.slot;
    }
  }
  for (const Region& old : removed) {
    bool kept = false;
    for (const Region& region : rebuilt) kept = kept || same(region, old);
    if (kept || old.access == PageAccess::kUnmapped) continue;
    installer_(Memslot{old.slot, old.gpa, 0, memory_.host(old.gpa), false});
    free_slots_.push_back(old.slot);
  }
  regions_.erase(first, last);
  for (Region& region : rebuilt) {
    const bool kept = std::any_of(removed.begin(), removed.end(),
                                  [&](const Region& old) { return same(region, old); });
    if (!kept && region.access != PageAccess::kUnmapped) {
      region.slot = allocate_slot();
      installer_(Memslot{region.slot, region.gpa, region.size, memory_.host(region.gpa),
                         region.access == PageAccess::kReadOnly});
    }
    regions_.emplace(region.gpa, region);
  }
}

PageAccess MemoryMap::access(std::uint64_t gpa) const {
  if (gpa >= memory_.size()) return PageAccess::kUnmapped;
  return std::prev(regions_.upper_bound(gpa))->second.access;
}

std::vector<MemoryMap::Region> MemoryMap::regions() const {
  std::vector<Region> out;
  for (const auto& [start, region] : regions_) out.push_back(region);
  return out;
}

std::size_t MemoryMap::slot_count() const {
  std::size_t count = 0;
  for (const auto& [start, region] : regions_) count += region.access != PageAccess::kUnmapped;
  return count;
}

}  // namespace drvm::vmm
