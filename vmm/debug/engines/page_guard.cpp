#include "vmm/debug/engines/page_guard.hpp"

namespace drvm::vmm::debug {

PageAccess PageGuard::access_of(const Refs& refs) {
  if (refs.open) return PageAccess::kReadWrite;
  if (refs.unmapped) return PageAccess::kUnmapped;
  if (refs.read_only) return PageAccess::kReadOnly;
  return PageAccess::kReadWrite;
}

void PageGuard::apply(std::uint64_t page, PageAccess before, PageAccess after) {
  if (before != after) map_.set_access(page, MemoryMap::kPageSize, after);
}

void PageGuard::add(std::uint64_t page, PageAccess access) {
  Refs& refs = pages_[page];
  const PageAccess before = access_of(refs);
  (access == PageAccess::kUnmapped ? refs.unmapped : refs.read_only)++;
  apply(page, before, access_of(refs));
}

void PageGuard::remove(std::uint64_t page, PageAccess access) {
  auto it = pages_.find(page);
  if (it == pages_.end()) return;
  Refs& refs = it->second;
  const PageAccess before = access_of(refs);
  auto& count = access == PageAccess::kUnmapped ? refs.unmapped : refs.read_only;
  if (count > 0) --count;
  const PageAccess after = access_of(refs);
  if (refs.unmapped == 0 && refs.read_only == 0 && !refs.open) pages_.erase(it);
  apply(page, before, after);
}

PageAccess PageGuard::wanted(std::uint64_t page) const {
  auto it = pages_.find(page);
  if (it == pages_.end()) return PageAccess::kReadWrite;
  Refs refs = it->second;
  refs.open = false;
  return access_of(refs);
}

void PageGuard::open_temporarily(std::uint64_t page) {
  auto it = pages_.find(page);
  if (it == pages_.end() || it->second.open) return;
  const PageAccess before = access_of(it->second);
  it->second.open = true;
  apply(page, before, PageAccess::kReadWrite);
}

void PageGuard::close_again(std::uint64_t page) {
  auto it = pages_.find(page);
  if (it == pages_.end() || !it->second.open) return;
  it->second.open = false;
  const PageAccess after = access_of(it->second);
  if (it->second.unmapped == 0 && it->second.read_only == 0) pages_.erase(it);
  apply(page, PageAccess::kReadWrite, after);
}

}  // namespace drvm::vmm::debug
