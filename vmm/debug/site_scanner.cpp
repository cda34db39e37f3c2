#include "vmm/debug/site_scanner.hpp"

#include <elf.h>

#include <Zydis/Zydis.h>
#include <algorithm>
#include <cstring>

#include "vmm/debug/instruction_decoding.hpp"

namespace drvm::vmm::debug {
namespace {

struct ExecutableRange {
  std::uint64_t file_offset;
  std::uint64_t size;
  std::uint64_t gpa;
};

template <class Ehdr, class Phdr>
std::vector<ExecutableRange> executable_ranges(const std::vector<std::byte>& bytes) {
  std::vector<ExecutableRange> ranges;
  Ehdr header;
  if (bytes.size() < sizeof header) return ranges;
  std::memcpy(&header, bytes.data(), sizeof header);
  for (unsigned i = 0; i < header.e_phnum; ++i) {
    const std::uint64_t at = header.e_phoff + std::uint64_t{i} * header.e_phentsize;
    Phdr phdr;
    if (at + sizeof phdr > bytes.size()) break;
    std::memcpy(&phdr, bytes.data() + at, sizeof phdr);
    if (phdr.p_type != PT_LOAD || (phdr.p_flags & PF_X) == 0) continue;
    if (phdr.p_offset + phdr.p_filesz > bytes.size()) continue;
    ranges.push_back({phdr.p_offset, phdr.p_filesz, phdr.p_paddr});
  }
  return ranges;
}

// The instructions is_system_instruction() names (besides MOV to CR).
bool loads_system_register(ZydisMnemonic mnemonic) {
  switch (mnemonic) {
    case ZYDIS_MNEMONIC_LGDT:
    case ZYDIS_MNEMONIC_LIDT:
    case ZYDIS_MNEMONIC_SGDT:
    case ZYDIS_MNEMONIC_SIDT:
    case ZYDIS_MNEMONIC_LLDT:
    case ZYDIS_MNEMONIC_LTR:
    case ZYDIS_MNEMONIC_FXSAVE:
    case ZYDIS_MNEMONIC_FXSAVE64:
    case ZYDIS_MNEMONIC_FXRSTOR:
    case ZYDIS_MNEMONIC_FXRSTOR64:
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
    case ZYDIS_MNEMONIC_IRETQ:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool ImageCode::instruction_may_start(std::uint64_t gpa) const {
  for (const auto& [start, size] : ranges) {
    if (gpa >= start && gpa - start < size) {
      return std::binary_search(instruction_starts.begin(), instruction_starts.end(), gpa);
    }
  }
  return true;
}

std::vector<MovDrSite> scan_mov_dr_sites(const BootImage& image) {
  return scan_image_code(image).mov_dr_sites;
}

ImageCode scan_image_code(const BootImage& image) {
  ImageCode result;
  std::vector<MovDrSite>& sites = result.mov_dr_sites;
  const auto& bytes = image.bytes;
  if (bytes.size() < EI_NIDENT) return result;
  const bool elf64 = std::to_integer<unsigned>(bytes[EI_CLASS]) == ELFCLASS64;
  const auto ranges = elf64 ? executable_ranges<Elf64_Ehdr, Elf64_Phdr>(bytes)
                            : executable_ranges<Elf32_Ehdr, Elf32_Phdr>(bytes);
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  for (const auto& range : ranges) {
    result.ranges.emplace_back(range.gpa, range.size);
    const auto* code = reinterpret_cast<const std::uint8_t*>(bytes.data() + range.file_offset);
    std::uint64_t offset = 0;
    while (offset < range.size) {
      const std::size_t left = range.size - offset;
      result.instruction_starts.push_back(range.gpa + offset);
      // Checked by hand first: Zydis refuses DR8-DR15 (REX.R), which must still trap (#UD).
      if (const auto move = decode_control_move(code + offset, left, true)) {
        if (move->kind != ControlMove::kToCr) {
          sites.push_back({range.gpa + offset, move->length});
        } else if (move->special == 0 || move->special == 3 || move->special == 4) {
          result.system_sites.push_back(range.gpa + offset);
        }
        offset += move->length;
        continue;
      }
      ZydisDecodedInstruction instruction;
      if (ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, nullptr, code + offset, left,
                                                     &instruction))) {
        if (loads_system_register(instruction.mnemonic)) {
          result.system_sites.push_back(range.gpa + offset);
        }
        offset += instruction.length;
      } else {
        ++offset;  // data or padding: resynchronise on the next byte
      }
    }
  }
  std::sort(result.instruction_starts.begin(), result.instruction_starts.end());
  return result;
}

}  // namespace drvm::vmm::debug
