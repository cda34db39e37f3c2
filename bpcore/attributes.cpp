#include "bpcore/attributes.hpp"

#include <vector>

namespace drvm::bp {

Result<void> validate(const BpAttr& attr) {
  switch (attr.type) {
    case BpType::kRead:
    case BpType::kWrite:
    case BpType::kReadWrite:
    case BpType::kExecute:
      break;
    default:
      return Error::kUnknownType;
  }
  if (attr.len != 1 && attr.len != 2 && attr.len != 4 && attr.len != 8) return Error::kBadLength;
  if (attr.type == BpType::kExecute && attr.len != 1) return Error::kExecuteLength;
  if (!is_canonical(attr.addr)) return Error::kNonCanonical;
  if (attr.addr & (attr.len - 1)) return Error::kMisaligned;
  return {};
}

std::vector<BpAttr> watch_pieces(std::uint64_t address, std::uint64_t length, BpType type,
                                 std::size_t max_pieces) {
  std::vector<BpAttr> pieces;
  if (length == 0 || address + (length - 1) < address) return pieces;
  // Every piece covers at most 8 bytes, so a longer range cannot fit; refuse before allocating.
  if (length / 8 > max_pieces) return pieces;
  while (length > 0) {
    if (pieces.size() == max_pieces) return {};
    std::uint32_t size = 8;
    while (size > 1 && ((address & (size - 1)) != 0 || size > length)) size /= 2;
    pieces.push_back(BpAttr{address, size, type});
    address += size;
    length -= size;
  }
  return pieces;
}

}  // namespace drvm::bp
