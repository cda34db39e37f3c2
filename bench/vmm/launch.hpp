// Runs a VMM process for the VMM benchmarks and times it from the host: posix_spawn to the first
// byte and the first full line on its stdout (the guest's serial output), and to its exit.
#pragma once

#include <string>
#include <vector>

namespace drvm::bench {

struct Launch {
  double first_byte_ms = -1;  // negative: the guest printed nothing
  double first_line_ms = -1;  // the first newline; negative: no complete line
  double exit_ms = 0;
  int status = -1;     // process exit status, -1 when killed by a signal
  std::string output;  // everything it wrote to stdout
  std::string error;   // set when the process could not be started
};

// Spawns argv (argv[0] a path) with stdout on a pipe, stdin and stderr on /dev/null, reads the
// pipe to its end and waits for the process.
Launch launch(const std::vector<std::string>& argv);

}  // namespace drvm::bench
