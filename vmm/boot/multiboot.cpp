#include "vmm/boot/multiboot.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>

namespace drvm::vmm {

namespace {

std::uint32_t word_at(std::span<const std::byte> bytes, std::uint64_t offset) {
  std::uint32_t value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

std::string bit_list(std::uint32_t bits) {
  std::string out;
  for (unsigned bit = 0; bit < 32; ++bit) {
    if ((bits >> bit & 1) == 0) continue;
    out += fmt::format("{}{}", out.empty() ? "" : ", ", bit);
  }
  return out;
}

}  // namespace

MultibootScan scan_multiboot_header(std::span<const std::byte> head) {
  MultibootScan scan;
  const std::uint64_t end = std::min<std::uint64_t>(head.size(), kMultibootSearchBytes);
  for (std::uint64_t at = 0; at + 12 <= end; at += 4) {
    if (word_at(head, at) != kMultibootHeaderMagic) continue;
    const std::uint32_t flags = word_at(head, at + 4);
    const std::uint32_t checksum = word_at(head, at + 8);
    if (static_cast<std::uint32_t>(kMultibootHeaderMagic + flags + checksum) != 0) {
      // Keep looking (QEMU does), but remember the first bad one for the refusal.
      if (scan.problem.empty()) {
        scan.problem = fmt::format(
            "Multiboot header at file offset {:#x} has a bad checksum {:#010x} (flags {:#010x} "
            "need checksum {:#010x})",
            at, checksum, flags, static_cast<std::uint32_t>(0 - kMultibootHeaderMagic - flags));
        scan.fix = "set the checksum to -(0x1BADB002 + flags) modulo 2^32";
      }
      continue;
    }
    scan.problem.clear();
    scan.fix.clear();
    const std::uint32_t unsupported = flags & 0xffff & ~kMultibootHonouredRequirements;
    if (unsupported != 0) {
      scan.problem = fmt::format(
          "Multiboot header at file offset {:#x} requires flag bit(s) {} (flags {:#010x}), which "
          "drvm cannot honour (it honours bits 0 page-align, 1 memory info, 2 video mode and 16 "
          "address fields)",
          at, bit_list(unsupported), flags);
      scan.fix = "clear those bits in the header's flags (and fix its checksum)";
      return scan;
    }
    MultibootHeader header;
    header.file_offset = at;
    header.flags = flags;
    if (flags & kMultibootAoutKludge) {
      if (at + 32 > end) {
        scan.problem = fmt::format(
            "Multiboot header at file offset {:#x} sets flag 16 but its address fields run past "
            "the first 8 KiB or the end of the file",
            at);
        scan.fix = "move the header nearer the start of the file";
        return scan;
      }
      header.header_addr = word_at(head, at + 12);
      header.load_addr = word_at(head, at + 16);
      header.load_end_addr = word_at(head, at + 20);
      header.bss_end_addr = word_at(head, at + 24);
      header.entry_addr = word_at(head, at + 28);
    }
    scan.header = header;
    return scan;
  }
  return scan;
}

}  // namespace drvm::vmm
