// Conversion between a vCPU's KVM register state and gdb's register set (gdbstub::Registers, in
// the order of the stub's target description). Pure functions: no ioctls, so they are unit-tested.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <functional>
#include <optional>

#include "bpcore/guest_dr_file.hpp"
#include "gdbstub/debug_target.hpp"

namespace drvm::vmm {

inline constexpr std::uint32_t kMsrKernelGsBase = 0xC0000102;

// Everything gdb's register set is made of, as KVM and the debug controller report it.
struct VcpuRegisterState {
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  std::uint64_t kernel_gs_base = 0;  // MSR 0xC0000102
  bp::GuestDebugRegs debug;          // the guest's own DR0-DR7 (its virtual DR file)
};

gdbstub::Registers to_gdb_registers(const VcpuRegisterState& state);

// Which parts of a VcpuRegisterState a write changed (only those are written back).
struct RegisterChanges {
  bool regs = false;
  bool sregs = false;
  bool fpu = false;
  bool kernel_gs_base = false;
  bool debug = false;
};

// Reads 8 bytes of guest memory at a linear address (for descriptor tables); nullopt when unmapped.
using QwordReader = std::function<std::optional<std::uint64_t>(std::uint64_t linear)>;

// Applies gdb's values onto `state`, field by field, so registers gdb did not change keep every bit
// KVM holds (upper RFLAGS, hidden segment parts). A changed segment selector loads its descriptor
// from the guest's GDT, as a MOV to the segment register would (selector 0 makes a data segment
// unusable); a selector whose descriptor cannot be read keeps the hidden part. fs_base/gs_base are
// applied after the selectors.
RegisterChanges apply_gdb_registers(const gdbstub::Registers& in, VcpuRegisterState& state,
                                    const QwordReader& read_qword);

// gdb's 16-bit x87 tag word from FXSAVE's abridged one (1 bit per physical register), classifying
// each valid register by its value as FSAVE would; and back.
std::uint16_t full_fpu_tag(const kvm_fpu& fpu);
std::uint8_t abridged_fpu_tag(std::uint16_t full_tag);

// Fills a kvm_segment's hidden part from a GDT/LDT descriptor (the low 8 bytes).
void load_segment_descriptor(kvm_segment& segment, std::uint16_t selector,
                             std::uint64_t descriptor);

}  // namespace drvm::vmm
