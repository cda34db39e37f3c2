#include "vmm/debug/engines/engine.hpp"

namespace drvm::vmm::debug {

const char* engine_name(Engine engine) {
  switch (engine) {
    case Engine::kNone:
      return "none";
    case Engine::kHardware:
      return "hardware";
    case Engine::kInt3:
      return "int3";
    case Engine::kReadOnlyPage:
      return "read-only page";
    case Engine::kUnmappedPage:
      return "unmapped page";
    case Engine::kSingleStep:
      return "single-step";
  }
  return "?";
}

}  // namespace drvm::vmm::debug
