// The drvm subcommands. Each takes the arguments after its own name and returns the process
// exit status (see docs/architecture.md for the status table).
#pragma once

#include <span>
#include <string_view>

namespace drvm::cli {

using Args = std::span<const std::string_view>;

int run_command(Args args);     // drvm run IMAGE [options]      (cli/run_command.cpp)
int probe_command(Args args);   // drvm probe [--json]           (cli/probe_command.cpp)
int test_command(Args args);    // drvm test MANIFEST... [opts]  (cli/test_command.cpp)
int replay_command(Args args);  // drvm replay RECORDING [opts] (cli/run_command.cpp)

}  // namespace drvm::cli
