#include "vmm/debug/engines/trap_sites.hpp"

#include <algorithm>

namespace drvm::vmm::debug {

bool TrapSites::add(std::uint64_t gpa, Reason reason) {
  std::byte* host = memory_.host(gpa);
  if (host == nullptr) return false;
  auto [it, created] = sites_.try_emplace(gpa);
  Site& site = it->second;
  if (created) {
    site.original = std::to_integer<std::uint8_t>(*host);
    *host = std::byte{kInt3};
  }
  switch (reason) {
    case Reason::kMovDr:
      site.mov_dr = true;
      break;
    case Reason::kSystem:
      site.system = true;
      break;
    case Reason::kBreakpoint:
      ++site.breakpoints;
      break;
  }
  return true;
}

bool TrapSites::add_mov_dr(std::uint64_t gpa) {
  return add(gpa, Reason::kMovDr);
}

bool TrapSites::add_system(std::uint64_t gpa) {
  return add(gpa, Reason::kSystem);
}

bool TrapSites::add_breakpoint(std::uint64_t gpa) {
  return add(gpa, Reason::kBreakpoint);
}

void TrapSites::restore(std::uint64_t gpa, const Site& site) {
  if (std::byte* host = memory_.host(gpa)) *host = std::byte{site.original};
}

void TrapSites::remove_breakpoint(std::uint64_t gpa) {
  auto it = sites_.find(gpa);
  if (it == sites_.end() || it->second.breakpoints == 0) return;
  if (--it->second.breakpoints == 0 && !it->second.mov_dr && !it->second.system) {
    restore(gpa, it->second);
    sites_.erase(it);
  }
}

const TrapSites::Site* TrapSites::find(std::uint64_t gpa) const {
  auto it = sites_.find(gpa);
  return it == sites_.end() ? nullptr : &it->second;
}

void TrapSites::lift(std::uint64_t gpa) {
  auto it = sites_.find(gpa);
  if (it == sites_.end() || it->second.lifted) return;
  restore(gpa, it->second);
  it->second.lifted = true;
}

void TrapSites::replant(std::uint64_t gpa) {
  auto it = sites_.find(gpa);
  if (it == sites_.end() || !it->second.lifted) return;
  it->second.lifted = false;
  if (std::byte* host = memory_.host(gpa)) {
    // The stepped instruction may have rewritten its own first byte: that is the new original.
    it->second.original = std::to_integer<std::uint8_t>(*host);
    *host = std::byte{kInt3};
  }
}

void TrapSites::overlay_originals(std::uint64_t gpa, std::span<std::uint8_t> out) const {
  if (sites_.empty()) return;
  if (out.size() < sites_.size()) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      auto it = sites_.find(gpa + i);
      if (it != sites_.end() && !it->second.lifted) out[i] = it->second.original;
    }
    return;
  }
  for (const auto& [address, site] : sites_) {
    if (address >= gpa && address - gpa < out.size() && !site.lifted) {
      out[address - gpa] = site.original;
    }
  }
}

bool TrapSites::write_original(std::uint64_t gpa, std::uint8_t byte) {
  auto it = sites_.find(gpa);
  if (it == sites_.end() || it->second.lifted) return false;
  it->second.original = byte;
  return true;
}

std::size_t TrapSites::write_through(std::uint64_t gpa, std::span<const std::uint8_t> in) {
  if (!memory_.write(gpa, std::as_bytes(in))) return 0;
  const auto replant = [&](std::uint64_t address, Site& site) {
    if (address < gpa || address - gpa >= in.size() || site.lifted) return;
    site.original = in[address - gpa];
    const std::byte trap{kInt3};
    memory_.write(address, std::span(&trap, 1));
  };
  if (in.size() < sites_.size()) {
    for (std::size_t i = 0; i < in.size(); ++i) {
      const auto it = sites_.find(gpa + i);
      if (it != sites_.end()) replant(it->first, it->second);
    }
  } else {
    for (auto& [address, site] : sites_) replant(address, site);
  }
  return in.size();
}

std::size_t TrapSites::read_original(std::uint64_t gpa, std::span<std::uint8_t> out) const {
  if (!memory_.read(gpa, std::as_writable_bytes(out))) return 0;
  overlay_originals(gpa, out);
  return out.size();
}

std::size_t TrapSites::fetch_instruction(const kvm_regs& regs, const kvm_sregs& sregs,
                                         std::array<std::uint8_t, kMaxInstruction>& out) const {
  const std::uint64_t linear = sregs.cs.base + regs.rip;
  const PagingState paging = PagingState::from(sregs);
  auto span = std::as_writable_bytes(std::span(out));
  const VirtualAccess got = read_virtual(memory_, paging, linear, span);
  for (std::size_t i = 0; i < got.transferred;) {
    const Translation t = translate(memory_, paging, linear + i);
    const std::size_t in_page =
        std::min<std::size_t>(got.transferred - i, 4096 - ((linear + i) & 4095));
    if (t.ok()) overlay_originals(t.gpa, std::span(out).subspan(i, in_page));
    i += in_page;
  }
  return got.transferred;
}

}  // namespace drvm::vmm::debug
