// Human-readable vCPU state for reports on stderr: general-purpose registers, RIP, decoded
// RFLAGS, segments, control registers, EFER, DR6/DR7, and the instruction at RIP disassembled with
// Zydis (read through the guest's page tables).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>

#include "vmm/kvm/guest_memory.hpp"

namespace drvm::vmm {

// A snapshot of everything the report prints; capture it from a Vcpu with capture_cpu_state().
struct CpuSnapshot {
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_debugregs debugregs{};
  bool have_debugregs = false;
};

class Vcpu;
CpuSnapshot capture_cpu_state(const Vcpu& vcpu);

// "CF ZF IF ..." for the set flags of rflags, plus IOPL.
std::string decode_rflags(std::uint64_t rflags);

// Disassembles the instruction at CS:RIP. fallback_bytes (e.g. from KVM's emulation-failure
// exit) are used when the guest memory is unreadable there.
std::string disassemble_at_rip(const CpuSnapshot& cpu, const PhysicalMemory& memory,
                               std::span<const std::uint8_t> fallback_bytes = {});

// Multi-line register dump; each line starts with "drvm:   ".
std::string format_cpu_report(const CpuSnapshot& cpu, const PhysicalMemory& memory,
                              std::span<const std::uint8_t> fallback_bytes = {});

}  // namespace drvm::vmm
