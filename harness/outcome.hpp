// How a `drvm run` child ended, from its process status (docs/architecture.md has the table).
#pragma once

#include <string>

#include "harness/child_process.hpp"
#include "harness/manifest.hpp"

namespace drvm::harness {

enum class OutcomeKind {
  Exit,     // odd status (v << 1) | 1: the guest wrote v to the exit port
  Timeout,  // 4: drvm's --timeout elapsed
  Halt,     // 6: HLT that no interrupt can end (docs/architecture.md)
  Fault,    // 8 triple fault, 10 KVM internal error / unhandled exit
  Error,    // 2 usage or setup error, or any status drvm run does not document
  Crash,    // drvm itself died from a signal
  Hung,     // drvm outlived the hard deadline and the harness killed it
};

struct Outcome {
  OutcomeKind kind = OutcomeKind::Error;
  unsigned exit_value = 0;  // Exit only
  int status = -1;          // process exit status, -1 when killed by a signal
  int signal = 0;           // Crash and Hung
};

// drvm run's documented statuses.
inline constexpr int kStatusUsageError = 2;
inline constexpr int kStatusTimeout = 4;
inline constexpr int kStatusHalted = 6;
inline constexpr int kStatusTripleFault = 8;
inline constexpr int kStatusInternalError = 10;

Outcome classify(int wait_status, bool killed_at_deadline);

// Whether `outcome` is what `expect` asks for.
bool matches(const Outcome& outcome, const Expectation& expect);

// "exit value 3 (status 7)", "timeout (status 4)", "crash: killed by signal 11 (Segmentation
// fault)", ...
std::string describe(const Outcome& outcome);
std::string describe(const Expectation& expect);

}  // namespace drvm::harness
