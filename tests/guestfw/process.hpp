// Runs a program to completion (or a deadline) and captures what it printed and how it ended.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace drvm::test {

struct ProcessOptions {
  std::chrono::milliseconds timeout{10000};
  // Stop the program (SIGKILL) as soon as its stdout ends with this text: for guests that never
  // end by themselves under a peer VMM.
  std::optional<std::string> stop_when_stdout_ends_with = std::nullopt;
  std::string stdin_path = "/dev/null";  // what the program reads as stdin
  std::vector<std::string> extra_env{};  // "NAME=value" entries added to this environment
};

struct ProcessResult {
  std::string stdout_text;
  std::string stderr_text;
  std::optional<int> exit_status;  // set when the program exited by itself
  std::optional<int> signal;       // set when a signal ended it (including ours)
  bool timed_out = false;          // we killed it at the deadline
  bool stopped_on_output = false;  // we killed it after stop_when_stdout_ends_with appeared
};

// argv[0] is looked up in PATH when it contains no '/'. Failures to start show up as exit status
// 127 with the reason on stderr_text.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// The full path of program in PATH, or nothing.
std::optional<std::string> find_in_path(const std::string& program);

// "exit status 3", "killed by signal 9", ...: for assertion messages.
std::string describe(const ProcessResult& result);

// Everything `fd` holds from offset 0 (a memfd a guest's serial output went to), however far the
// writer's offset has moved.
std::string read_from_start(int fd);

}  // namespace drvm::test
