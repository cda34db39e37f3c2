// The INT3 bytes drvm plants in guest memory, VM-wide, keyed by guest physical address: over MOV DR
// instructions (so they can be emulated), over instructions that move a descriptor table or change
// paging (so the engines look at the layout again after them), and over instruction breakpoints
// (the INT3 engine). Each
// site keeps the original byte; readers that must not see drvm's traps (gdb) overlay it. Not
// thread-safe: the controller's lock guards it.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>

#include "vmm/debug/engines/engine.hpp"

#include "vmm/kvm/guest_memory.hpp"

namespace drvm::vmm::debug {

class TrapSites {
 public:
  static constexpr std::uint8_t kInt3 = 0xcc;

  explicit TrapSites(GuestMemory& memory) : memory_(memory) {}

  struct Site {
    std::uint8_t original = 0;
    bool mov_dr = false;            // planted over a MOV DR found in the image
    bool system = false;            // over LGDT/LIDT/LLDT/LTR or MOV to CR0/CR3/CR4 in the image
    std::uint32_t breakpoints = 0;  // instruction breakpoints (over all vCPUs) using this site
    bool lifted = false;            // temporarily restored for a step over it
  };

  // Adds a reason to trap at `gpa` (plants the INT3 on the first one). False when gpa is not RAM.
  bool add_mov_dr(std::uint64_t gpa);
  bool add_system(std::uint64_t gpa);
  bool add_breakpoint(std::uint64_t gpa);
  // Drops one breakpoint reason; the original byte returns when no reason is left.
  void remove_breakpoint(std::uint64_t gpa);

  const Site* find(std::uint64_t gpa) const;
  bool empty() const { return sites_.empty(); }

  // Restores the original byte of a site for one step over it, and plants it again.
  void lift(std::uint64_t gpa);
  void replant(std::uint64_t gpa);

  // `out` holds guest bytes read from [gpa, gpa + out.size()): replaces planted INT3s by the
  // original bytes.
  void overlay_originals(std::uint64_t gpa, std::span<std::uint8_t> out) const;
  // A debugger writes `byte` at `gpa`: if it is a planted site, the original is updated and the
  // trap stays; returns whether it was a site (the caller writes RAM otherwise).
  bool write_original(std::uint64_t gpa, std::uint8_t byte);
  // Writes RAM as the guest would have it: a planted site's byte becomes its original and the trap
  // stays. Returns the bytes written (0 when not all of it is RAM).
  std::size_t write_through(std::uint64_t gpa, std::span<const std::uint8_t> in);
  // Guest RAM at [gpa, gpa + out.size()) as the guest wrote it; 0 when not all of it is RAM.
  std::size_t read_original(std::uint64_t gpa, std::span<std::uint8_t> out) const;
  // The bytes of the instruction at the vCPU's RIP as the guest wrote them (up to the first
  // untranslated page). Returns how many were read.
  std::size_t fetch_instruction(const kvm_regs& regs, const kvm_sregs& sregs,
                                std::array<std::uint8_t, kMaxInstruction>& out) const;

 private:
  enum class Reason : std::uint8_t { kMovDr, kSystem, kBreakpoint };
  bool add(std::uint64_t gpa, Reason reason);
  void restore(std::uint64_t gpa, const Site& site);

  GuestMemory& memory_;
  std::unordered_map<std::uint64_t, Site> sites_;
};

}  // namespace drvm::vmm::debug
