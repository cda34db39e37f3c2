// The counting session's `drvm run` flags (--event, --stat, --json, --stat-output, --trace,
// --record, --slots, --symbols), their checks, and the slot-count rule. run_command.cpp registers
// them with add_session_options(); the semantics live here. docs/events-guide.md is the user's
// view.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm::session {

// A flag problem (status 2); what() is the one-line message without "drvm: ".
class OptionError : public SetupError {
 public:
  using SetupError::SetupError;
};

// --slots counts the host's slots per vCPU (gdb's and the sessions' events). The guest's own
// DR0-DR3 are never part of it: they have 4 slots of their own on top, so 60 + 4 fill the 64.
inline constexpr std::uint32_t kMinSlots = 4;
inline constexpr std::uint32_t kMaxSlots = 60;
// Without --slots: as many host slots as there can be, with --event as with --gdb, so a handful
// of events is counted exactly instead of being multiplexed.
inline constexpr std::uint32_t kDefaultSlots = kMaxSlots;

struct SessionOptions {
  std::vector<std::string> events;     // --event SPEC, in order
  bool stat = false;                   // --stat
  bool json = false;                   // --json
  std::string stat_output;             // --stat-output FILE ("" = stderr)
  bool trace = false;                  // --trace
  std::string record;                  // --record FILE
  std::optional<std::uint32_t> slots;  // --slots N
  std::string symbols;                 // --symbols FILE ("" = the image's own symbol table)

  bool active() const { return !events.empty(); }
  // Checks the combination; an --event without --stat/--trace/--record implies --stat.
  // Throws OptionError.
  void finalize();
  // The host's slot count for DebugOptions::slots, or nullopt to keep the controller's default.
  std::optional<std::uint32_t> debug_slots() const;
};

// "4".."60"; throws OptionError.
std::uint32_t parse_slots(std::string_view text);

// Registers the flags on the CLI's OptionParser. `UsageError` is the parser's error type: the
// session's OptionError is rethrown as it so the parser reports it like any other flag error.
template <class UsageError, class Parser>
void add_session_options(Parser& parser, SessionOptions& options) {
  parser.add_value(
      "--event", "SPEC", [&options](std::string_view value) { options.events.emplace_back(value); },
      "count accesses: mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,period=N][,pinned]"
      "[,exclusive][,vcpu=N] (repeatable; docs/events-guide.md)");
  parser.add_flag("--stat", &options.stat,
                  "at exit, print each event's count, time enabled/running and scaled estimate");
  parser.add_flag("--json", &options.json, "print --stat as one JSON object");
  parser.add_value(
      "--stat-output", "FILE", [&options](std::string_view value) { options.stat_output = value; },
      "write --stat to FILE instead of stderr");
  parser.add_flag("--trace", &options.trace,
                  "print one line per event hit on stderr (vCPU, RIP, access, address, values)");
  parser.add_value(
      "--record", "FILE", [&options](std::string_view value) { options.record = value; },
      "write one JSON line per event hit to FILE");
  parser.add_value(
      "--slots", "N",
      [&options](std::string_view value) {
        try {
          options.slots = parse_slots(value);
        } catch (const OptionError& error) {
          throw UsageError(error.what());
        }
      },
      "the host's breakpoint slots per vCPU for --event and gdb, 4-60 (default 60); the guest's "
      "own 4 debug registers come on top and are never taken");
  parser.add_value(
      "--symbols", "FILE", [&options](std::string_view value) { options.symbols = value; },
      "take symbol names (--event mem:SYMBOL, --trace, --record, --stat) from FILE, an ELF with a "
      "symbol table such as the unstripped build of a stripped IMAGE");
}

}  // namespace drvm::vmm::session
