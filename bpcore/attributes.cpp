#include "bpcore/attributes.hpp"

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

}  // namespace drvm::bp
