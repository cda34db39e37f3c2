// Boot modules (drvm run --initrd, QEMU's -initrd): files loaded into guest RAM after the image
// and listed for the kernel, in Multiboot's module list or in hvm_start_info's modlist (PVH).
// Parsing the option, reading the files and choosing the addresses live here; boot.cpp writes the
// lists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace drvm::vmm {

struct BootModule {
  std::string path;     // the file, for messages
  std::string cmdline;  // the module's string as QEMU passes it: "FILE[ ARGS]", the whole spec
  std::vector<std::byte> data;
};

// Splits one --initrd value as QEMU splits -initrd: modules separated by ',' (",," stands for a
// literal comma); in each, a space ends the file name and the rest are the module's arguments.
std::vector<std::string> split_initrd_option(std::string_view value);

// Reads the module "FILE[ ARGS]". Throws SetupError (one line naming the module) when the file is
// missing, unreadable or larger than the guest's RAM.
BootModule read_boot_module(const std::string& spec, std::uint64_t memory_size);

// Modules start at 4 KiB boundaries (Multiboot's page-align flag; QEMU aligns them so too).
constexpr std::uint64_t kModuleAlign = 4096;

// The guest physical address of each module, laid out one after the other from `start` (rounded
// up to kModuleAlign), each aligned, none inside the legacy hole (0xa0000-0x100000). Throws
// SetupError naming the first module that does not fit below memory_size, with the --mem it needs.
std::vector<std::uint64_t> place_modules(std::span<const BootModule> modules, std::uint64_t start,
                                         std::uint64_t memory_size);

}  // namespace drvm::vmm
