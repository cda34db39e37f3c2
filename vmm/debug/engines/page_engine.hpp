// The page engines: a data breakpoint the hardware slots cannot take protects its page in the
// memslots (PageGuard, VM-wide: memory is shared by every vCPU). A write watch makes the page
// read-only, a read or read/write watch unmaps it; each access to the page then exits as MMIO,
// drvm completes it against RAM and matches it against this vCPU's watches, and the hit is
// reported once the instruction finishes (trap-like). The paging structures that translate a
// watched address are write-protected too (TableGuards), so that a page-table edit re-arms. One per
// vCPU.
//
// Invariant: each slot armed here holds one reference on its page (PageGuard) and each page in
// guarded_tables one read-only reference and one TableGuards count; disarm() drops exactly these.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bpcore/effective_set.hpp"
#include "bpcore/types.hpp"
#include "vmm/debug/engines/engine.hpp"
#include "vmm/debug/engines/page_guard.hpp"
#include "vmm/probe/probe.hpp"

namespace drvm::vmm::debug {

// Paging-structure pages write-protected because an armed translation depends on them, with
// references from every vCPU, and a generation counted up at each guest edit of one of them.
struct TableGuards {
  std::unordered_map<std::uint64_t, unsigned> references;
  std::atomic<std::uint64_t> generation{0};
};

// An access to a protected RAM page that drvm completed (KVM_EXIT_MMIO on RAM).
struct CompletedAccess {
  std::uint64_t gpa = 0;
  std::uint32_t size = 0;
  bool write = false;
  std::uint64_t old_value = 0;
  std::uint64_t new_value = 0;  // writes
  bool table_edit = false;      // a write that changed a guarded paging structure
};

// The slots an access matched, and the first access for the report.
struct AccessMatch {
  std::uint64_t slots = 0;
  std::optional<AccessInfo> first;
};

class PageEngine {
 public:
  PageEngine(PageGuard& pages, TableGuards& tables) : pages_(pages), tables_(tables) {
    page_of_slot_.fill(kNoAddress);
  }

  // Protects the page of the watch in `slot` (at guest-physical `gpa`). Returns the engine used:
  // read-only for a write watch where the host has read-only memslots, else unmapped.
  Engine arm(unsigned slot, std::uint64_t gpa, const bp::BpAttr& attr, const ProbeResult& can);
  // Write-protects the paging structures translating `linear`.
  void guard_tables(const GuestMemory& memory, const kvm_sregs& sregs, std::uint64_t linear);
  void disarm();
  std::uint64_t slots() const { return slots_; }  // slots served by a page engine

  // Completes an MMIO exit on RAM against the RAM (reads fill run.mmio.data). nullopt when the
  // address is not RAM (a device).
  std::optional<CompletedAccess> complete(GuestMemory& memory, kvm_run& run);
  // The watches of this vCPU an access at `gpa` touches (`eff` as armed).
  AccessMatch match(const bp::EffectiveSet& eff, const CompletedAccess& access) const;

  // An instruction of this vCPU must run with `page` accessible for one drvm step (fetched from
  // an unmapped page, or a system instruction's operand), and is protected again after it.
  void open_for_step(std::uint64_t page);
  void close_after_step();
  bool open() const { return open_page_ != kNoAddress; }

 private:
  PageGuard& pages_;
  TableGuards& tables_;
  std::array<std::uint64_t, bp::kMaxSlots> page_of_slot_{};  // kNoAddress: not armed here
  std::array<PageAccess, bp::kMaxSlots> access_of_slot_{};
  std::uint64_t slots_ = 0;
  std::vector<std::uint64_t> guarded_tables_;
  std::uint64_t open_page_ = kNoAddress;
};

}  // namespace drvm::vmm::debug
