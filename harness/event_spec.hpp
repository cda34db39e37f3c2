// A syntax check of `drvm run --event` specs (issue 6), so a typo in a manifest is reported with
// its file and line before any guest runs. Symbols are resolved later, by `drvm run`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace drvm::harness {

// Grammar: mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,period=N][,pinned][,exclusive][,vcpu=N]
// Returns what is wrong with `spec`, or nullopt when it is well formed.
std::optional<std::string> event_spec_problem(std::string_view spec);

}  // namespace drvm::harness
