// Decodes an image's code before it runs: the guest's MOV DR instructions, so that drvm can plant a
// trap over each where the host cannot make MOV DR exit (no DR7.GD exit), the instructions that
// load a descriptor-table register, the task register or a paging control register, and where
// instructions
// start, so that an instruction breakpoint's INT3 never lands inside an instruction. A linear
// sweep with Zydis over every executable PT_LOAD segment, resynchronising one byte further on
// undecodable bytes.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "vmm/boot/image.hpp"

namespace drvm::vmm::debug {

struct MovDrSite {
  std::uint64_t gpa = 0;  // first byte of the instruction (where the image is loaded)
  unsigned length = 0;
};

struct ImageCode {
  std::vector<MovDrSite> mov_dr_sites;  // in address order
  // Instructions KVM carries out touching memory itself, or that move a descriptor table, the TSS
  // or the paging structures (is_system_instruction): each is stepped with its operand's page
  // open, and the page engines look at the layout again after it.
  std::vector<std::uint64_t> system_sites;
  std::vector<std::uint64_t> instruction_starts;                // GPAs, in address order
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // executable [gpa, gpa + size)

  // Whether an INT3 may go at `gpa`: an instruction starts there, or it is not the image's code
  // (nothing known about it).
  bool instruction_may_start(std::uint64_t gpa) const;
};

// Decodes as 64-bit code (the encodings of MOV DR are the same in 32-bit code; a misread site is
// checked again when it is reached).
ImageCode scan_image_code(const BootImage& image);
std::vector<MovDrSite> scan_mov_dr_sites(const BootImage& image);

}  // namespace drvm::vmm::debug
