#include "vmm/session/session_options.hpp"

#include <fmt/format.h>

#include "cmdline/numbers.hpp"

namespace drvm::vmm::session {

std::uint32_t parse_slots(std::string_view text) {
  const std::optional<std::uint64_t> value = cmdline::parse_whole_number(text);
  if (!value || *value < kMinSlots || *value > kMaxSlots) {
    throw OptionError(fmt::format(
        "--slots: '{}' is not a host slot count from {} to {} (the guest's 4 come on top); give "
        "for example --slots 4 or --slots 16",
        text, kMinSlots, kMaxSlots));
  }
  return static_cast<std::uint32_t>(*value);
}

void add_session_options(cmdline::CommandLine& line, SessionOptions& options) {
  line.add_value(
      "--event", "SPEC", [&options](const std::string& value) { options.events.push_back(value); },
      "count accesses: mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x] then any of ,period=N ,pinned "
      ",exclusive ,vcpu=N (repeatable; docs/events-guide.md)");
  line.add_flag("--stat", &options.stat,
                "at exit, print each event's count, time enabled/running and scaled estimate");
  line.add_flag("--json", &options.json, "print --stat as one JSON object");
  line.add_value(
      "--stat-output", "FILE",
      [&options](const std::string& value) { options.stat_output = value; },
      "write --stat to FILE instead of stderr");
  line.add_flag("--trace", &options.trace,
                "print one line per event hit on stderr (vCPU, RIP, access, address, values)");
  line.add_value(
      "--record", "FILE", [&options](const std::string& value) { options.record = value; },
      "write one JSON line per event hit to FILE");
  line.add_value(
      "--slots", "N",
      [&options](const std::string& value) {
        try {
          options.slots = parse_slots(value);
        } catch (const OptionError& error) {
          throw cmdline::UsageError(fmt::format("run: {}", error.what()));
        }
      },
      "the host's breakpoint slots per vCPU for --event and gdb, 4-60 (default 60); the guest's "
      "own 4 debug registers come on top and are never taken");
  line.add_value(
      "--symbols", "FILE", [&options](const std::string& value) { options.symbols = value; },
      "take symbol names (--event mem:SYMBOL, --trace, --record, --stat) from FILE, an ELF with a "
      "symbol table such as the unstripped build of a stripped IMAGE");
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
  // --json and --stat-output shape --stat's output: asking for them asks for --stat, as an
  // --event alone does.
  if (json || !stat_output.empty()) stat = true;
  if (!stat && !trace && record.empty()) stat = true;
}

std::optional<std::uint32_t> SessionOptions::debug_slots() const {
  return slots;
}

}  // namespace drvm::vmm::session
