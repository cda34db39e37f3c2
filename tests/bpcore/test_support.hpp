// Helpers shared by the manager tests.
#pragma once

#include "bpcore/manager.hpp"

namespace drvm::bp::test {

inline EventSpec spec(BpAttr attr, Binding binding, bool pinned = true) {
  EventSpec s;
  s.attr = attr;
  s.binding = binding;
  s.pinned = pinned;
  return s;
}

inline BpAttr exec(std::uint64_t addr) {
  return {addr, 1, BpType::kExecute};
}
inline BpAttr write(std::uint64_t addr, std::uint32_t len = 4) {
  return {addr, len, BpType::kWrite};
}

inline EventId must(Result<EventId> r) {
  if (!r) throw std::runtime_error(std::string(error_message(r.error())));
  return r.value();
}

}  // namespace drvm::bp::test
