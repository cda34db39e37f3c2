// Runs one child process with its stdout and stderr captured, under a hard deadline: the harness
// must never hang on a child, whatever the child does with its output or its time.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "harness/cancellation.hpp"

namespace drvm::harness {

struct ChildSpec {
  std::vector<std::string> argv;          // argv[0] is the program path (no PATH search)
  std::chrono::milliseconds deadline{0};  // SIGKILL after this long
  std::size_t capture_limit = 16u << 20;  // per stream; the rest is read and dropped
  const Cancellation* cancel = nullptr;   // when requested: kill the child, stop waiting
};

struct ChildResult {
  int wait_status = 0;              // as from waitpid()
  bool killed_at_deadline = false;  // the harness killed it
  bool interrupted = false;         // killed because `drvm test` was interrupted
  std::string out;                  // stdout bytes, up to capture_limit
  std::string err;                  // stderr bytes, up to capture_limit
  bool out_truncated = false;
  bool err_truncated = false;
  std::chrono::duration<double> wall{0};
};

// Starts argv with stdin on /dev/null and both output streams on pipes read concurrently (poll),
// so a child filling either pipe cannot deadlock. The child leads a process group of its own:
// the harness kills the whole group (at the deadline, or when cancelled), and a terminal's Ctrl-C
// reaches only the harness, which then stops its children itself. Throws std::system_error when
// it cannot start.
ChildResult run_child(const ChildSpec& spec);

}  // namespace drvm::harness
