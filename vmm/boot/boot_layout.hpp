// Where drvm puts its boot structures in guest physical memory. Everything lives in the first
// 64 KiB, which images may not load into; the memory map marks it reserved. (Boot modules, their
// list and the Multiboot strings go after the image instead, as QEMU places them.)
#pragma once

#include <cstdint>

namespace drvm::vmm::layout {

constexpr std::uint64_t kGdt = 0x1000;         // GDT (selectors below)
constexpr std::uint64_t kTss = 0x1100;         // a zeroed 104-byte TSS so TR is valid
constexpr std::uint64_t kStartInfo = 0x2000;   // struct hvm_start_info (PVH, EBX points here)
constexpr std::uint64_t kMemmap = 0x2100;      // hvm_memmap_table_entry[]
constexpr std::uint64_t kCmdline = 0x3000;     // NUL-terminated command line
constexpr std::uint64_t kCmdlineMax = 0x1000;  // including the NUL
constexpr std::uint64_t kPml4 = 0x4000;        // long-mode identity tables (ELF64 boot)
constexpr std::uint64_t kPdpt = 0x5000;
constexpr std::uint64_t kPageDirectories = 0x6000;  // four PDs: 0-4 GiB in 2 MiB pages
constexpr std::uint64_t kMultibootInfo = 0xa000;    // Multiboot information (EBX points here)
constexpr std::uint64_t kMultibootMmap = 0xa100;    // its memory map (the entries of kMemmap)
constexpr std::uint64_t kStackTop = 0x10000;        // initial RSP for ELF64 boot (grows down)
constexpr std::uint64_t kBootAreaEnd = 0x10000;     // images must load at or above this

// Legacy VGA/BIOS hole, reported reserved in the memory map.
constexpr std::uint64_t kLegacyHoleStart = 0xa0000;
constexpr std::uint64_t kLegacyHoleEnd = 0x100000;
// The ACPI tables (acpi_tables.hpp), RSDP first: in the hole, where the legacy RSDP scan of
// 0xE0000-0xFFFFF finds it, and so reserved in the memory map.
constexpr std::uint64_t kAcpiTables = 0xe0000;

// RAM must end below the 32-bit MMIO area (and KVM's TSS pages below 4 GiB on VMX).
constexpr std::uint64_t kMinMemory = 2 * 1024 * 1024;
constexpr std::uint64_t kMaxMemory = 3ULL * 1024 * 1024 * 1024;

// GDT selectors.
constexpr std::uint16_t kCode64Selector = 0x08;
constexpr std::uint16_t kCode32Selector = 0x10;
constexpr std::uint16_t kDataSelector = 0x18;
constexpr std::uint16_t kTssSelector = 0x20;  // 16-byte system descriptor

}  // namespace drvm::vmm::layout
