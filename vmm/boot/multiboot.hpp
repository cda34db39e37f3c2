// Multiboot (v1) images as QEMU's -kernel boots them: the header in the file's first 8 KiB, its
// checks, and the layout of the Multiboot information the kernel finds through EBX. Pure logic:
// image.cpp decides the format, boot.cpp writes the information into guest memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace drvm::vmm {

constexpr std::uint32_t kMultibootHeaderMagic = 0x1badb002;
constexpr std::uint32_t kMultibootBootMagic = 0x2badb002;  // EAX at entry
// The header must lie entirely in the file's first 8 KiB, 32-bit aligned.
constexpr std::uint64_t kMultibootSearchBytes = 8192;

// Header flags. Bits 0-15 are requirements a loader must refuse when it cannot honour them.
constexpr std::uint32_t kMultibootPageAlign = 1u << 0;    // modules 4 KiB aligned
constexpr std::uint32_t kMultibootMemoryInfo = 1u << 1;   // mem_* and mmap_* in the information
constexpr std::uint32_t kMultibootVideoMode = 1u << 2;    // a graphics mode (ignored, as QEMU does)
constexpr std::uint32_t kMultibootAoutKludge = 1u << 16;  // the header's address fields are valid
constexpr std::uint32_t kMultibootHonouredRequirements =
    kMultibootPageAlign | kMultibootMemoryInfo | kMultibootVideoMode;

struct MultibootHeader {
  std::uint64_t file_offset = 0;
  std::uint32_t flags = 0;
  // The a.out kludge's address fields (valid when flags has kMultibootAoutKludge).
  std::uint32_t header_addr = 0, load_addr = 0, load_end_addr = 0, bss_end_addr = 0, entry_addr = 0;
};

// What the scan of the first 8 KiB found. A header with a bad checksum or flags drvm cannot
// honour is a `problem` (the cause for the one-line refusal), not an error yet: an image with a
// PVH note boots by PVH whatever its Multiboot header says.
struct MultibootScan {
  std::optional<MultibootHeader> header;
  std::string problem;
  std::string fix;
};

// `head` is the file's first bytes (at most kMultibootSearchBytes are looked at). The first
// header with a valid checksum wins, as in QEMU.
MultibootScan scan_multiboot_header(std::span<const std::byte> head);

// The Multiboot information (Multiboot 0.6.96, section 3.3), as far as drvm fills it.
struct MultibootInfo {
  std::uint32_t flags;
  std::uint32_t mem_lower;  // KiB from 0
  std::uint32_t mem_upper;  // KiB from 1 MiB
  std::uint32_t boot_device;
  std::uint32_t cmdline;
  std::uint32_t mods_count;
  std::uint32_t mods_addr;
  std::uint32_t syms[4];
  std::uint32_t mmap_length;
  std::uint32_t mmap_addr;
  std::uint32_t drives_length;
  std::uint32_t drives_addr;
  std::uint32_t config_table;
  std::uint32_t boot_loader_name;
  std::uint32_t apm_table;
  std::uint32_t vbe[4];  // control and mode info, then four 16-bit fields
};
static_assert(sizeof(MultibootInfo) == 88);

// The information flags drvm sets: the ones QEMU sets.
constexpr std::uint32_t kMultibootInfoMemory = 1u << 0;
constexpr std::uint32_t kMultibootInfoBootDevice = 1u << 1;
constexpr std::uint32_t kMultibootInfoCmdline = 1u << 2;
constexpr std::uint32_t kMultibootInfoModules = 1u << 3;
constexpr std::uint32_t kMultibootInfoMmap = 1u << 6;
constexpr std::uint32_t kMultibootInfoLoaderName = 1u << 9;
// No BIOS disk: "no drive" in the first byte, as QEMU passes.
constexpr std::uint32_t kMultibootNoBootDevice = 0x8000ffff;

#pragma pack(push, 1)
// One memory map entry; `size` counts the bytes after itself (20), so the next entry starts at
// this one's address + size + 4.
struct MultibootMmapEntry {
  std::uint32_t size;
  std::uint64_t addr;
  std::uint64_t len;
  std::uint32_t type;
};
#pragma pack(pop)
static_assert(sizeof(MultibootMmapEntry) == 24);

struct MultibootModule {
  std::uint32_t mod_start;
  std::uint32_t mod_end;  // one past the last byte
  std::uint32_t string;   // the module's command line
  std::uint32_t reserved;
};
static_assert(sizeof(MultibootModule) == 16);

}  // namespace drvm::vmm
