// The textual event spec of `drvm run --event` and `drvm test` manifests:
//   mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,period=N][,pinned][,exclusive][,vcpu=N]
// Parsing is pure text; symbols are resolved later against the image (vmm/session/event_plan.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "bpcore/attributes.hpp"

namespace drvm::bp {

// A spec the user must fix. what(): "<cause>; <fix>" (the caller names the spec).
class SpecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EventRequest {
  std::string text;                     // the spec exactly as given (the stat output's key)
  std::string symbol;                   // empty when the location is a number
  std::uint64_t address = 0;            // the number, when symbol is empty
  std::uint64_t offset = 0;             // +OFF
  std::optional<std::uint32_t> length;  // /LEN
  BpType type = BpType::kReadWrite;     // perf's mem: default
  std::uint64_t period = 0;             // 0: count only
  bool pinned = false;                  // flexible by default, as perf
  bool exclusive = false;
  std::optional<std::uint32_t> vcpu;  // nullopt: every vCPU
};

// Throws SpecError naming the wrong part.
EventRequest parse_event_spec(std::string_view spec);

// "r", "w", "rw", "x".
std::string_view type_name(BpType type);

}  // namespace drvm::bp
