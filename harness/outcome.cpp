#include "harness/outcome.hpp"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstring>

namespace drvm::harness {

Outcome classify(int wait_status, bool killed_at_deadline) {
  Outcome outcome;
  if (WIFSIGNALED(wait_status)) {
    outcome.signal = WTERMSIG(wait_status);
    outcome.kind = killed_at_deadline ? OutcomeKind::Hung : OutcomeKind::Crash;
    return outcome;
  }
  outcome.status = WEXITSTATUS(wait_status);
  if (outcome.status % 2 == 1) {
    outcome.kind = OutcomeKind::Exit;
    outcome.exit_value = static_cast<unsigned>(outcome.status) >> 1;
    return outcome;
  }
  switch (outcome.status) {
    case kStatusTimeout:
      outcome.kind = OutcomeKind::Timeout;
      break;
    case kStatusHalted:
      outcome.kind = OutcomeKind::Halt;
      break;
    case kStatusTripleFault:
    case kStatusInternalError:
      outcome.kind = OutcomeKind::Fault;
      break;
    default:
      outcome.kind = OutcomeKind::Error;
      break;
  }
  return outcome;
}

bool matches(const Outcome& outcome, const Expectation& expect) {
  switch (expect.outcome) {
    case ExpectedOutcome::Exit:
      return outcome.kind == OutcomeKind::Exit &&
             (!expect.exit_value || *expect.exit_value == outcome.exit_value);
    case ExpectedOutcome::Halt:
      return outcome.kind == OutcomeKind::Halt;
    case ExpectedOutcome::Timeout:
      return outcome.kind == OutcomeKind::Timeout;
    case ExpectedOutcome::Fault:
      return outcome.kind == OutcomeKind::Fault;
  }
  return false;
}

std::string describe(const Outcome& outcome) {
  switch (outcome.kind) {
    case OutcomeKind::Exit:
      return fmt::format("exit value {} (status {})", outcome.exit_value, outcome.status);
    case OutcomeKind::Timeout:
      return fmt::format("timeout (status {})", outcome.status);
    case OutcomeKind::Halt:
      return fmt::format("halt (status {})", outcome.status);
    case OutcomeKind::Fault:
      return fmt::format(
          "fault: {} (status {})",
          outcome.status == kStatusTripleFault ? "triple fault" : "KVM internal error",
          outcome.status);
    case OutcomeKind::Error:
      return outcome.status == kStatusUsageError
                 ? fmt::format("error: drvm run refused the case (status {})", outcome.status)
                 : fmt::format("error: undocumented status {}", outcome.status);
    case OutcomeKind::Crash:
      return fmt::format("crash: drvm killed by signal {} (SIG{})", outcome.signal,
                         sigabbrev_np(outcome.signal));
    case OutcomeKind::Hung:
      return "hung: drvm did not end by the hard deadline (timeout + margin) and was killed";
  }
  return "?";
}

std::string describe(const Expectation& expect) {
  if (expect.outcome == ExpectedOutcome::Exit) {
    return expect.exit_value ? fmt::format("exit value {}", *expect.exit_value)
                             : std::string("exit (any value)");
  }
  return std::string(to_string(expect.outcome));
}

}  // namespace drvm::harness
