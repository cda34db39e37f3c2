// The text of gdb's `monitor` commands (qRcmd) for drvm: `dr` (every debug slot of every vCPU),
// `events` (counts), `probe` (the capability probe), `help`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vmm/debug/debug_controller.hpp"
#include "vmm/gdb_target.hpp"
#include "vmm/machine.hpp"

namespace drvm::vmm {

// Runs `command` (surrounding blanks ignored) and returns what gdb prints; an unknown command
// gets the help text. `breakpoints` are gdb's current breakpoints.
std::string run_monitor_command(std::string_view command, Machine& machine,
                                debug::DebugController& controller,
                                const std::vector<GdbBreakpoint>& breakpoints);

}  // namespace drvm::vmm
