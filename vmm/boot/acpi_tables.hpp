// The ACPI tables drvm gives a guest, as QEMU's microvm and Firecracker give PVH guests: an RSDP
// (revision 2) that points to an RSDT and an XSDT, which list a FADT (hardware-reduced, with an
// empty DSDT) and a MADT: one Processor Local APIC entry per vCPU (ACPI processor UID = APIC ID =
// index), the I/O APIC (ID 0 at 0xfec00000, GSI base 0), the interrupt source override IRQ 0 ->
// GSI 2, and a Local APIC NMI entry for LINT1 of every processor.
//
// They live at layout::kAcpiTables in the reserved legacy BIOS area (0xE0000-0xFFFFF), where a
// guest without start_info finds the RSDP by the legacy scan; PVH guests get its address in
// hvm_start_info.rsdp_paddr.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vmm/kvm/guest_memory.hpp"

namespace drvm::vmm {

// The tables, laid out for guest-physical address `base` (the RSDP comes first, at `base`).
std::vector<std::uint8_t> build_acpi_tables(std::uint64_t base, unsigned vcpu_count);

// Builds them for layout::kAcpiTables and writes them there; returns the RSDP's address.
std::uint64_t write_acpi_tables(GuestMemory& memory, unsigned vcpu_count);

// The ACPI checksum rule: the bytes sum to 0 (mod 256).
std::uint8_t acpi_sum(std::span<const std::uint8_t> bytes);

}  // namespace drvm::vmm
