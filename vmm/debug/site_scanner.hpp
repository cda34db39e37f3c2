// Finds the guest's MOV DR instructions in an image before it runs, so that drvm can plant a trap
// over each where the host cannot make MOV DR exit (no DR7.GD exit): a linear sweep with Zydis
// over every executable PT_LOAD segment, resynchronising one byte further on undecodable bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/image.hpp"

namespace drvm::vmm::debug {

struct MovDrSite {
  std::uint64_t gpa = 0;  // first byte of the instruction (where the image is loaded)
  unsigned length = 0;
};

// Sites in address order. Decodes as 64-bit code (the encodings of MOV DR are the same in 32-bit
// code; a misread site is checked again when it is reached).
std::vector<MovDrSite> scan_mov_dr_sites(const BootImage& image);

}  // namespace drvm::vmm::debug
