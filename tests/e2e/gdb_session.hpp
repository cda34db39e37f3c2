// Runs `drvm run IMAGE --gdb 0` and the real gdb against it (`gdb -nx -batch`), both bounded by
// timeouts, and captures what each printed and how drvm ended.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace drvm::test {

struct GdbScript {
  std::string image = "gdbwork";       // build/guest/IMAGE.elf, also gdb's `file`
  std::vector<std::string> drvm_args;  // after `run IMAGE --gdb 0`
  // `drvm replay RECORDING --gdb 0` instead of `drvm run IMAGE --gdb 0` (IMAGE stays gdb's file).
  std::optional<std::string> replay_recording;
  std::vector<std::string> commands;  // gdb -ex commands after `target remote`
  // Send SIGINT to gdb (a user's Ctrl-C) once the guest's serial output contains this text.
  std::optional<std::string> interrupt_when_serial_has;
  // Start gdb only once the guest's serial output contains this text (--gdb-no-wait).
  std::optional<std::string> attach_when_serial_has;
  // Before gdb: this many connections that close without sending a packet (a script probing the
  // port).
  int probes_before_gdb = 0;
  // After the first gdb ended: a second gdb with these commands (after `target remote`), when
  // set.
  std::optional<std::vector<std::string>> second_gdb_commands;
  std::chrono::seconds gdb_timeout{60};
  std::chrono::seconds drvm_timeout{30};  // after gdb ended
};

struct GdbSessionResult {
  std::string gdb_output;          // stdout and stderr of gdb
  std::string second_gdb_output;   // of the second gdb, if any
  std::string serial;              // drvm's stdout
  std::string drvm_log;            // drvm's stderr
  std::optional<int> drvm_status;  // nothing when drvm had to be killed
  bool gdb_timed_out = false;
  bool interrupted = false;  // the SIGINT was sent
  std::string describe() const;
};

bool gdb_available();
// Whether `text` contains `part`; whether it has a match of the ECMAScript `pattern`; how many
// times `part` occurs in it (overlaps counted).
bool contains(const std::string& text, const std::string& part);
bool matches(const std::string& text, const std::string& pattern);
std::size_t count(const std::string& text, const std::string& part);

// Whether /dev/kvm can be opened for reading and writing.
bool kvm_usable();

// Skips the test (with the reason) when gdb or a usable /dev/kvm is missing.
#define REQUIRE_GDB_AND_KVM()                                               \
  do {                                                                      \
    if (!gdb_available()) GTEST_SKIP() << "gdb is not installed";           \
    if (!kvm_usable()) GTEST_SKIP() << "/dev/kvm is missing or not usable"; \
  } while (0)
GdbSessionResult run_gdb_session(const GdbScript& script);

}  // namespace drvm::test
