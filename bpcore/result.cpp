#include "bpcore/result.hpp"

namespace drvm::bp {

std::string_view error_message(Error error) {
  switch (error) {
    case Error::kBadLength:
      return "breakpoint length must be 1, 2, 4 or 8 bytes";
    case Error::kMisaligned:
      return "breakpoint address is not aligned to its length";
    case Error::kExecuteLength:
      return "an instruction breakpoint must have length 1";
    case Error::kNonCanonical:
      return "breakpoint address is not canonical";
    case Error::kUnknownType:
      return "unknown breakpoint type (expected read, write, read/write or execute)";
    case Error::kNoSpace:
      return "no free debug-register slot for this breakpoint";
    case Error::kBadWeight:
      return "event weight must be between 1 and the slot pool size";
    case Error::kBadVcpu:
      return "vCPU index out of range";
    case Error::kUnknownEvent:
      return "no such event";
  }
  return "unknown error";
}

}  // namespace drvm::bp
