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

#include "cmdline/command_line.hpp"
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
  // Checks the combination; an --event without --stat/--trace/--record implies --stat, and so do
  // --json and --stat-output (they shape --stat's output).
  // Throws OptionError.
  void finalize();
  // The host's slot count for DebugOptions::slots, or nullopt to keep the controller's default.
  std::optional<std::uint32_t> debug_slots() const;
};

// "4".."60"; throws OptionError.
std::uint32_t parse_slots(std::string_view text);

// Registers the flags on `drvm run`'s command line; a bad --slots is reported like any other
// flag error (cmdline::UsageError).
void add_session_options(cmdline::CommandLine& line, SessionOptions& options);

}  // namespace drvm::vmm::session
