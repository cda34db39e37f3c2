// Flat segments (base 0, limit 4 GiB, DPL 0, accessed) as KVM_SET_SREGS takes them: what the boot
// paths and the probe's VMs start with.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace drvm::vmm::x86 {

enum class FlatSegment : std::uint8_t { kCode64, kCode32, kData };

inline kvm_segment flat_segment(std::uint16_t selector, FlatSegment kind) {
  kvm_segment segment{};
  segment.base = 0;
  segment.limit = 0xffffffff;
  segment.selector = selector;
  segment.type = kind == FlatSegment::kData ? 0x3 : 0xb;  // read/write data, or execute/read code
  segment.present = 1;
  segment.dpl = 0;
  segment.s = 1;
  segment.g = 1;
  segment.l = kind == FlatSegment::kCode64 ? 1 : 0;
  segment.db = kind == FlatSegment::kCode64 ? 0 : 1;
  return segment;
}

}  // namespace drvm::vmm::x86
