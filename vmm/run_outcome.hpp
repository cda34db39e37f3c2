// How a run ended, and the process status drvm exits with (docs/architecture.md has the table).
#pragma once

#include <cstdint>
#include <string>

namespace drvm::vmm {

namespace status {
constexpr int kUsage = 2;         // bad flag, bad image, /dev/kvm unusable
constexpr int kTimeout = 4;       // --timeout elapsed
constexpr int kHalted = 6;        // HLT with nothing to wake the vCPU
constexpr int kTripleFault = 8;   // KVM_EXIT_SHUTDOWN
constexpr int kInternal = 10;     // KVM internal error, failed entry, unhandled exit
constexpr int kKilled = 12;       // killed by the debugger
constexpr int kInterrupted = 14;  // SIGINT or SIGTERM stopped the run
// QEMU isa-debug-exit: value v gives (v << 1) | 1; only the low 8 bits reach the parent.
constexpr int exit_port(std::uint32_t value) {
  return static_cast<int>(((std::uint64_t{value} << 1) | 1) & 0xff);
}
}  // namespace status

struct RunOutcome {
  enum class Kind : std::uint8_t {
    kExitPort,
    kTimeout,
    kHalted,
    kTripleFault,
    kInternalError,
    kKilled,
    kInterrupted,  // SIGINT/SIGTERM (drvm run's own signal handling)
  };
  Kind kind = Kind::kInternalError;
  int status = status::kInternal;
  std::uint32_t exit_value = 0;  // kExitPort: the value the guest wrote
  unsigned vcpu = 0;             // the vCPU that ended the run
  // What drvm reports on stderr: lines starting with "drvm: ", newline-terminated; empty for a
  // clean exit-port run.
  std::string report;
};

// How a run ended, in words ("exit port", "triple fault", ...).
constexpr const char* outcome_name(RunOutcome::Kind kind) {
  switch (kind) {
    case RunOutcome::Kind::kExitPort:
      return "exit port";
    case RunOutcome::Kind::kTimeout:
      return "timeout";
    case RunOutcome::Kind::kHalted:
      return "halted";
    case RunOutcome::Kind::kTripleFault:
      return "triple fault";
    case RunOutcome::Kind::kInternalError:
      return "internal error";
    case RunOutcome::Kind::kKilled:
      return "killed";
    case RunOutcome::Kind::kInterrupted:
      return "interrupted";
  }
  return "unknown";
}

}  // namespace drvm::vmm
