// Guest image parsing, in the order QEMU's -kernel tries the formats: PVH ELF (32- or 64-bit, with
// a XEN_ELFNOTE_PHYS32_ENTRY note) entered in 32-bit protected mode; Multiboot v1 (a header in the
// first 8 KiB: ELF segments, or the a.out kludge's address fields for any file) entered in 32-bit
// protected mode with EAX = 0x2BADB002; ELF64 without either entered in long mode at e_entry.
// Parsing is pure (bytes in, BootImage out) so unit tests can feed it hand-made broken files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmm/kvm/guest_memory.hpp"
#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {

// A refused image; what() is the one-line report (without "drvm: ").
class ImageError : public SetupError {
 public:
  using SetupError::SetupError;
};

enum class EntryMode : std::uint8_t {
  kPvh32,        // PVH: 32-bit protected mode, paging off, EBX = hvm_start_info
  kLong64,       // ELF64 without PVH note: long mode with identity page tables
  kMultiboot32,  // Multiboot v1: 32-bit protected mode, paging off, EBX = Multiboot information
};

struct LoadSegment {
  std::uint64_t file_offset = 0;
  std::uint64_t file_size = 0;
  std::uint64_t gpa = 0;  // p_paddr
  std::uint64_t mem_size = 0;
};

struct BootImage {
  std::string name;  // the path, for messages
  EntryMode mode = EntryMode::kPvh32;
  std::uint64_t entry = 0;
  std::vector<LoadSegment> segments;
  // The parts of the file drvm uses, as a self-consistent ELF: the ELF header, program and
  // section headers, each PT_LOAD's file bytes and the first symbol table with its strings, with
  // p_offset/sh_offset rewritten to point into this buffer (segments[i].file_offset too). Other
  // sections and notes read as empty (offset 0, size 0): they are never read from the file, so a
  // huge or sparse file costs only what the guest needs.
  // (An a.out-kludge Multiboot image that is not an ELF gets a one-segment ELF32 wrapped around
  // the bytes it loads.)
  std::vector<std::byte> bytes;
  // Things drvm boots despite, for the user (one line each, without "drvm: ").
  std::vector<std::string> warnings;
};

// The largest guest RAM (drvm run --mem's limit, boot_layout.hpp's kMaxMemory).
constexpr std::uint64_t kMaxImageMemory = 3ULL << 30;

// XEN_ELFNOTE_PHYS32_ENTRY, from Xen's public/elfnote.h.
constexpr std::uint32_t kPvhEntryNoteType = 18;

// Throws ImageError naming the problem. `memory_size` is the guest's RAM: the loadable segments
// must fit in it, which bounds what is read before anything is allocated.
BootImage parse_image(std::vector<std::byte> bytes, const std::string& name,
                      std::uint64_t memory_size = kMaxImageMemory);
// Reads only what parse_image needs, with pread; refuses anything but a regular file (a FIFO is
// opened without blocking).
BootImage read_image(const std::string& path, std::uint64_t memory_size = kMaxImageMemory);

// Copies the segments into guest memory and zeroes their bss parts. Throws ImageError when a
// segment does not fit in RAM or overlaps drvm's boot area (see boot_layout.hpp).
void load_image(const BootImage& image, GuestMemory& memory);

// One past the highest byte the image's segments occupy, rounded up to 4 KiB, as QEMU computes
// it: boot modules and the Multiboot module list go from there.
std::uint64_t image_end_page(const BootImage& image);

}  // namespace drvm::vmm
