// Boot-time guest state: the hvm_start_info block with memory map, command line and module list
// (PVH), the Multiboot information (Multiboot), the boot modules, the GDT and TSS, long-mode
// identity page tables (ELF64), and the initial vCPU registers for each entry mode. Addresses
// come from boot_layout.hpp; modules and their lists go after the image (boot_modules.hpp).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/boot/boot_modules.hpp"
#include "vmm/boot/image.hpp"
#include "vmm/kvm/guest_memory.hpp"

namespace drvm::vmm {

// Xen's public/arch-x86/hvm/start_info.h, version 1.
constexpr std::uint32_t kHvmStartMagic = 0x336ec578;
struct HvmStartInfo {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t flags;
  std::uint32_t nr_modules;
  std::uint64_t modlist_paddr;
  std::uint64_t cmdline_paddr;
  std::uint64_t rsdp_paddr;
  std::uint64_t memmap_paddr;
  std::uint32_t memmap_entries;
  std::uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmMemmapEntry {
  std::uint64_t addr;
  std::uint64_t size;
  std::uint32_t type;  // 1 = RAM, 2 = reserved (E820 numbering)
  std::uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

struct HvmModlistEntry {
  std::uint64_t paddr;
  std::uint64_t size;
  std::uint64_t cmdline_paddr;
  std::uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

constexpr std::uint32_t kMemmapRam = 1;
constexpr std::uint32_t kMemmapReserved = 2;

// The memory map drvm reports for a guest with mem_size bytes of RAM.
std::vector<HvmMemmapEntry> boot_memory_map(std::uint64_t mem_size);

// The boot loader name in the Multiboot information.
constexpr std::string_view kMultibootLoaderName = "drvm";

// Throws the SetupError write_boot_structures would throw for modules (or their list and strings)
// that do not fit in memory_size bytes of RAM after the image, so that drvm run can refuse them
// before it opens KVM.
void check_boot_modules_fit(const BootImage& image, const std::string& cmdline,
                            std::span<const BootModule> modules, std::uint64_t memory_size);

// Writes GDT, TSS, start_info, memory map, command line, (for kLong64) the page tables, (for
// kMultiboot32) the Multiboot information, and the modules with their list: Multiboot's for
// kMultiboot32, start_info's modlist otherwise. The image must be loaded (load_image) first.
// Throws SetupError when the command line is too long or a module does not fit in RAM.
void write_boot_structures(GuestMemory& memory, const BootImage& image, const std::string& cmdline,
                           std::span<const BootModule> modules = {});

// Initial registers for the bootstrap vCPU.
struct InitialCpuState {
  kvm_regs regs;
  kvm_sregs sregs;
};
// base is the vCPU's current sregs (so fields drvm does not set, such as the APIC base, keep
// KVM's defaults).
InitialCpuState initial_cpu_state(EntryMode mode, std::uint64_t entry, const kvm_sregs& base);

}  // namespace drvm::vmm
