#include "vmm/session/session_options.hpp"

#include <fmt/format.h>

#include <charconv>

namespace drvm::vmm::session {

std::uint32_t parse_slots(std::string_view text) {
  std::uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      value < kMinSlots || value > kMaxSlots) {
    throw OptionError(fmt::format(
        "--slots: '{}' is not a host slot count from {} to {} (the guest's 4 come on top); give "
        "for example --slots 4 or --slots 16",
        text, kMinSlots, kMaxSlots));
  }
  return value;
}

void SessionOptions::finalize() {
  if (events.empty()) {
    const char* flag = stat                   ? "--stat"
                       : trace                ? "--trace"
                       : !record.empty()      ? "--record"
                       : json                 ? "--json"
                       : !stat_output.empty() ? "--stat-output"
                                              : nullptr;
    if (flag != nullptr) {
      throw OptionError(fmt::format(
          "{}: there is nothing to count; add --event SPEC (for example --event mem:SYMBOL:w)",
          flag));
    }
    return;
  }
  if (!stat && (json || !stat_output.empty())) {
    throw OptionError(fmt::format("{}: it only shapes --stat's output; add --stat",
                                  json ? "--json" : "--stat-output"));
  }
  if (!stat && !trace && record.empty()) stat = true;
}

std::optional<std::uint32_t> SessionOptions::debug_slots() const {
  return slots;
}

}  // namespace drvm::vmm::session
