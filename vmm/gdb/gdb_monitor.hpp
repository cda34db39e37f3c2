// The text of gdb's `monitor` commands (qRcmd) for drvm: `dr` (every debug slot of every vCPU),
// `events` (counts), `history` (what reverse execution keeps), `probe` (the capability probe),
// `help`.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/debug/debug_controller.hpp"
#include "vmm/gdb/gdb_target.hpp"
#include "vmm/machine.hpp"
#include "vmm/session/stat_report.hpp"

namespace drvm::vmm {

// What the gdb target knows that the commands show.
struct MonitorState {
  std::vector<GdbBreakpoint> breakpoints;       // gdb's current breakpoints
  std::vector<RemovedBreakpoint> removed;       // inserted earlier, removed now (with their hits)
  std::function<std::string()> session_events;  // the --event events' lines, if any
  const replay::History* history = nullptr;     // reverse execution's, if the session has one
};

// Runs `command` (surrounding blanks ignored) and returns what gdb prints; an unknown command
// gets the help text.
std::string run_monitor_command(std::string_view command, Machine& machine,
                                debug::DebugController& controller, const MonitorState& state);

// `monitor events`' lines for the counting session's --event events: spec, location, count.
std::string format_session_events(const session::StatReport& report);

}  // namespace drvm::vmm
