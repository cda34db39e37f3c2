#include "vmm/boot/boot.hpp"

#include <fmt/format.h>
#include <cstring>

#include "vmm/boot/boot_layout.hpp"
#include "vmm/boot/multiboot.hpp"
#include "vmm/x86/segments.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm {

namespace {

// Segment descriptor flags: type/S/DPL/P in the access byte, G/DB/L in the flags nibble.
constexpr std::uint64_t descriptor(std::uint32_t base, std::uint32_t limit, std::uint8_t access,
                                   std::uint8_t flags) {
  return (std::uint64_t{limit} & 0xffff) | ((std::uint64_t{base} & 0xffffff) << 16) |
         (std::uint64_t{access} << 40) | ((std::uint64_t{limit} >> 16 & 0xf) << 48) |
         (std::uint64_t{flags} << 52) | ((std::uint64_t{base} >> 24) << 56);
}

constexpr std::uint8_t kAccessCode = 0x9b;  // present, ring 0, code, execute/read, accessed
constexpr std::uint8_t kAccessData = 0x93;  // present, ring 0, data, read/write, accessed
constexpr std::uint8_t kAccessTss = 0x8b;   // present, busy 32/64-bit TSS
constexpr std::uint8_t kFlagsCode64 = 0xa;  // G, L
constexpr std::uint8_t kFlagsFlat32 = 0xc;  // G, D/B
constexpr std::uint32_t kTssLimit = 0x67;

template <typename T>
void put(GuestMemory& memory, std::uint64_t gpa, const T& value) {
  std::memcpy(memory.host(gpa, sizeof(T)), &value, sizeof(T));
}

// Strings and tables that go after the image (module lists, Multiboot strings), written in order.
class AfterImageArea {
 public:
  AfterImageArea(GuestMemory& memory, std::uint64_t start) : memory_(memory), next_(start) {}

  std::uint64_t reserve(std::uint64_t size) {
    if (!memory_.contains(next_, size)) {
      throw SetupError(fmt::format(
          "boot: no room after the image (at {:#x}) for the boot module list and strings "
          "({:#x} bytes) in {:#x} bytes of RAM; raise --mem",
          next_, size, memory_.size()));
    }
    const std::uint64_t at = next_;
    next_ += size;
    return at;
  }
  std::uint64_t add_string(std::string_view text) {
    const std::uint64_t at = reserve(text.size() + 1);
    std::memcpy(memory_.host(at, text.size()), text.data(), text.size());
    *memory_.host(at + text.size(), 1) = std::byte{0};
    return at;
  }
  std::uint64_t end() const { return next_; }

 private:
  GuestMemory& memory_;
  std::uint64_t next_;
};

// The bytes write_hvm_modules / write_multiboot_info put after the image before the modules.
std::uint64_t after_image_area_size(const BootImage& image, const std::string& cmdline,
                                    std::span<const BootModule> modules) {
  const bool multiboot = image.mode == EntryMode::kMultiboot32;
  std::uint64_t size =
      modules.size() * (multiboot ? sizeof(MultibootModule) : sizeof(HvmModlistEntry));
  for (const BootModule& module : modules) size += module.cmdline.size() + 1;
  if (multiboot) {
    size += image.name.size() + 1 + cmdline.size() + 1 + kMultibootLoaderName.size() + 1;
  }
  return size;
}

// Copies the modules to their places; returns the places.
std::vector<std::uint64_t> load_modules(GuestMemory& memory, std::span<const BootModule> modules,
                                        std::uint64_t start) {
  const std::vector<std::uint64_t> places = place_modules(modules, start, memory.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    if (modules[i].data.empty()) continue;
    std::memcpy(memory.host(places[i], modules[i].data.size()), modules[i].data.data(),
                modules[i].data.size());
  }
  return places;
}

// hvm_start_info's module list (PVH, ELF64): the entries, then the command lines, then the
// modules.
void write_hvm_modules(GuestMemory& memory, HvmStartInfo& info, std::span<const BootModule> modules,
                       std::uint64_t area_start) {
  if (modules.empty()) return;
  AfterImageArea area(memory, area_start);
  const std::uint64_t list = area.reserve(modules.size() * sizeof(HvmModlistEntry));
  std::vector<HvmModlistEntry> entries(modules.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    entries[i].cmdline_paddr = area.add_string(modules[i].cmdline);
  }
  const std::vector<std::uint64_t> places = load_modules(memory, modules, area.end());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    entries[i].paddr = places[i];
    entries[i].size = modules[i].data.size();
    put(memory, list + i * sizeof(HvmModlistEntry), entries[i]);
  }
  info.nr_modules = static_cast<std::uint32_t>(modules.size());
  info.modlist_paddr = list;
}

// The Multiboot information at layout::kMultibootInfo, with the fields QEMU fills. After the
// image, as in QEMU: the module list, the module strings, the kernel's command line ("IMAGE
// CMDLINE": boot loaders pass the kernel's name first), the loader name, then the modules.
void write_multiboot_info(GuestMemory& memory, const BootImage& image, const std::string& cmdline,
                          std::span<const BootModule> modules, std::uint64_t area_start) {
  AfterImageArea area(memory, area_start);
  const std::uint64_t list = area.reserve(modules.size() * sizeof(MultibootModule));
  std::vector<MultibootModule> entries(modules.size());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    entries[i].string = static_cast<std::uint32_t>(area.add_string(modules[i].cmdline));
  }
  MultibootInfo info{};
  info.cmdline = static_cast<std::uint32_t>(area.add_string(image.name + " " + cmdline));
  info.boot_loader_name = static_cast<std::uint32_t>(area.add_string(kMultibootLoaderName));
  const std::vector<std::uint64_t> places = load_modules(memory, modules, area.end());
  for (std::size_t i = 0; i < modules.size(); ++i) {
    entries[i].mod_start = static_cast<std::uint32_t>(places[i]);
    entries[i].mod_end = static_cast<std::uint32_t>(places[i] + modules[i].data.size());
    put(memory, list + i * sizeof(MultibootModule), entries[i]);
  }
  info.flags = kMultibootInfoMemory | kMultibootInfoBootDevice | kMultibootInfoCmdline |
               kMultibootInfoModules | kMultibootInfoMmap | kMultibootInfoLoaderName;
  // Lower memory is the RAM below the legacy hole; upper memory runs from 1 MiB to the end of
  // RAM without a hole (RAM ends below the 32-bit MMIO area).
  info.mem_lower = static_cast<std::uint32_t>(layout::kLegacyHoleStart / 1024);
  info.mem_upper = static_cast<std::uint32_t>((memory.size() - layout::kLegacyHoleEnd) / 1024);
  info.boot_device = kMultibootNoBootDevice;
  info.mods_count = static_cast<std::uint32_t>(modules.size());
  info.mods_addr = static_cast<std::uint32_t>(list);
  std::uint64_t at = layout::kMultibootMmap;
  for (const HvmMemmapEntry& region : boot_memory_map(memory.size())) {
    put(memory, at,
        MultibootMmapEntry{sizeof(MultibootMmapEntry) - 4, region.addr, region.size, region.type});
    at += sizeof(MultibootMmapEntry);
  }
  info.mmap_addr = static_cast<std::uint32_t>(layout::kMultibootMmap);
  info.mmap_length = static_cast<std::uint32_t>(at - layout::kMultibootMmap);
  put(memory, layout::kMultibootInfo, info);
}

}  // namespace

std::vector<HvmMemmapEntry> boot_memory_map(std::uint64_t mem_size) {
  return {
      {0, layout::kBootAreaEnd, kMemmapReserved, 0},
      {layout::kBootAreaEnd, layout::kLegacyHoleStart - layout::kBootAreaEnd, kMemmapRam, 0},
      {layout::kLegacyHoleStart, layout::kLegacyHoleEnd - layout::kLegacyHoleStart, kMemmapReserved,
       0},
      {layout::kLegacyHoleEnd, mem_size - layout::kLegacyHoleEnd, kMemmapRam, 0},
  };
}

void check_boot_modules_fit(const BootImage& image, const std::string& cmdline,
                            std::span<const BootModule> modules, std::uint64_t memory_size) {
  const std::uint64_t start = image_end_page(image);
  // An image outside RAM is load_image's to report.
  if (start > memory_size) return;
  const std::uint64_t size = after_image_area_size(image, cmdline, modules);
  if (size > memory_size - start) {
    throw SetupError(fmt::format(
        "boot: no room after the image (at {:#x}) for the boot module list and strings ({:#x} "
        "bytes) in {:#x} bytes of RAM; raise --mem",
        start, size, memory_size));
  }
  place_modules(modules, start + size, memory_size);
}

void write_boot_structures(GuestMemory& memory, const BootImage& image, const std::string& cmdline,
                           std::span<const BootModule> modules) {
  check_boot_modules_fit(image, cmdline, modules, memory.size());
  const EntryMode mode = image.mode;
  if (cmdline.size() + 1 > layout::kCmdlineMax || cmdline.find('\0') != std::string::npos) {
    throw SetupError(
        fmt::format("--cmdline: {} bytes is too long (at most {}) or contains NUL; "
                    "shorten the command line",
                    cmdline.size(), layout::kCmdlineMax - 1));
  }
  const std::uint64_t gdt[] = {
      0,
      descriptor(0, 0xfffff, kAccessCode, kFlagsCode64),
      descriptor(0, 0xfffff, kAccessCode, kFlagsFlat32),
      descriptor(0, 0xfffff, kAccessData, kFlagsFlat32),
      descriptor(static_cast<std::uint32_t>(layout::kTss), kTssLimit, kAccessTss, 0),
      0,  // upper half of the 16-byte TSS descriptor in long mode (base bits 63:32 = 0)
  };
  put(memory, layout::kGdt, gdt);

  const auto memmap = boot_memory_map(memory.size());
  std::memcpy(memory.host(layout::kMemmap, memmap.size() * sizeof(HvmMemmapEntry)), memmap.data(),
              memmap.size() * sizeof(HvmMemmapEntry));
  std::memcpy(memory.host(layout::kCmdline, cmdline.size() + 1), cmdline.c_str(),
              cmdline.size() + 1);
  HvmStartInfo info{};
  info.magic = kHvmStartMagic;
  info.version = 1;
  info.cmdline_paddr = layout::kCmdline;
  info.memmap_paddr = layout::kMemmap;
  info.rsdp_paddr = layout::kAcpiTables;  // written by write_acpi_tables() (acpi_tables.hpp)
  info.memmap_entries = static_cast<std::uint32_t>(memmap.size());
  if (mode == EntryMode::kMultiboot32) {
    write_multiboot_info(memory, image, cmdline, modules, image_end_page(image));
  } else {
    write_hvm_modules(memory, info, modules, image_end_page(image));
  }
  put(memory, layout::kStartInfo, info);

  if (mode == EntryMode::kLong64) {
    // Identity map 0-4 GiB with 2 MiB pages (present, writable): RAM plus the 32-bit MMIO area.
    put(memory, layout::kPml4, std::uint64_t{layout::kPdpt | 0x3});
    for (std::uint64_t gib = 0; gib < 4; ++gib) {
      const std::uint64_t directory = layout::kPageDirectories + gib * 0x1000;
      put(memory, layout::kPdpt + gib * 8, std::uint64_t{directory | 0x3});
      for (std::uint64_t i = 0; i < 512; ++i) {
        const std::uint64_t frame = (gib << 30) | (i << 21);
        put(memory, directory + i * 8, std::uint64_t{frame | 0x83});  // P, RW, PS
      }
    }
  }
}

InitialCpuState initial_cpu_state(EntryMode mode, std::uint64_t entry, const kvm_sregs& base) {
  InitialCpuState state{};
  state.sregs = base;
  kvm_sregs& s = state.sregs;
  const bool long_mode = mode == EntryMode::kLong64;
  s.cs = long_mode ? x86::flat_segment(layout::kCode64Selector, x86::FlatSegment::kCode64)
                   : x86::flat_segment(layout::kCode32Selector, x86::FlatSegment::kCode32);
  const kvm_segment data = x86::flat_segment(layout::kDataSelector, x86::FlatSegment::kData);
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.tr = kvm_segment{};
  s.tr.base = layout::kTss;
  s.tr.limit = kTssLimit;
  s.tr.selector = layout::kTssSelector;
  s.tr.type = 0xb;
  s.tr.present = 1;
  s.ldt = kvm_segment{};
  s.ldt.unusable = 1;
  s.ldt.type = 0x2;
  s.gdt.base = layout::kGdt;
  s.gdt.limit = 6 * 8 - 1;
  s.idt.base = 0;
  s.idt.limit = 0;
  if (long_mode) {
    s.cr0 = x86::kCr0Pe | x86::kCr0Mp | x86::kCr0Et | x86::kCr0Ne | x86::kCr0Wp | x86::kCr0Pg;
    s.cr3 = layout::kPml4;
    s.cr4 = x86::kCr4Pae | x86::kCr4Osfxsr | x86::kCr4Osxmmexcpt;
    s.efer = x86::kEferLme | x86::kEferLma;
  } else {
    // PVH ABI and Multiboot: CR0.PE set, paging off, CR4 clear, EFER clear.
    s.cr0 = x86::kCr0Pe | x86::kCr0Et;
    s.cr3 = 0;
    s.cr4 = 0;
    s.efer = 0;
  }
  state.regs = kvm_regs{};
  state.regs.rip = entry;
  state.regs.rflags = 0x2;  // only the reserved bit 1
  if (long_mode) {
    state.regs.rsp = layout::kStackTop;
    state.regs.rsi = layout::kStartInfo;  // harmless hint for ELF64 guests that want it
  } else if (mode == EntryMode::kMultiboot32) {
    state.regs.rax = kMultibootBootMagic;
    state.regs.rbx = layout::kMultibootInfo;
  } else {
    state.regs.rbx = layout::kStartInfo;
  }
  return state;
}

}  // namespace drvm::vmm
