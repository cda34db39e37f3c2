// The layout rule of the page engines: KVM reads and writes some guest pages itself, without an
// exit drvm could complete (descriptor loads, event delivery, page walks), so a page engine must
// never protect them. When a watch's page (or a paging structure on its walk) is one of them, the
// vCPU runs on the single-step engine instead: slower, exact on every layout.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "bpcore/effective_set.hpp"
#include "vmm/debug/engines/page_guard.hpp"
#include "vmm/kvm/guest_memory.hpp"
#include "vmm/probe/probe.hpp"

namespace drvm::vmm::debug {

// The guest-physical pages KVM accesses itself: the GDT (segment loads read descriptors and set
// their accessed bits), the IDT, the LDT and the TSS (event delivery), and the stack an exception
// frame would be pushed on now.
std::vector<std::uint64_t> system_structure_pages(const GuestMemory& memory, const kvm_sregs& sregs,
                                                  const kvm_regs& regs);

// Whether a page engine for one of `eff`'s slots (those the hardware slots cannot take) would
// protect a system structure or a paging structure (KVM walks them; an unmapped one ends the
// walk), or a page-table page on its walk would hold a system structure.
bool layout_needs_stepping(const GuestMemory& memory, const bp::EffectiveSet& eff,
                           const kvm_sregs& sregs, const kvm_regs& regs, const ProbeResult& can);

// Whether an exception frame pushed now would land on a page drvm protects.
bool frame_on_guarded_page(const GuestMemory& memory, const PageGuard& pages,
                           const kvm_sregs& sregs, const kvm_regs& regs);

}  // namespace drvm::vmm::debug
