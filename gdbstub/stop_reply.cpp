#include "gdbstub/stop_reply.hpp"

#include <fmt/format.h>

#include <string_view>

namespace drvm::gdbstub {
namespace {

constexpr int kSigInt = 2;
constexpr int kSigTrap = 5;

std::string trap_cause_field(const StopEvent& event, StopReplyFeatures features) {
  switch (event.cause) {
    case TrapCause::kSoftwareBreakpoint:
      return features.swbreak ? "swbreak:;" : "";
    case TrapCause::kHardwareBreakpoint:
      return features.hwbreak ? "hwbreak:;" : "";
    case TrapCause::kWriteWatchpoint:
      return fmt::format("watch:{:x};", event.data_address);
    case TrapCause::kReadWatchpoint:
      return fmt::format("rwatch:{:x};", event.data_address);
    case TrapCause::kAccessWatchpoint:
      return fmt::format("awatch:{:x};", event.data_address);
    case TrapCause::kUnspecified:
    case TrapCause::kStep:
      break;
  }
  return "";
}

// RSP "replaylog:begin": the target reached the beginning of its log going backward.
std::string_view history_field(const StopEvent& event) {
  return event.history_start ? "replaylog:begin;" : "";
}

}  // namespace

std::string format_stop_reply(const StopEvent& event, StopReplyFeatures features) {
  switch (event.reason) {
    case StopReason::kTrap:
      return fmt::format("T{:02x}{}{}thread:{:x};", kSigTrap, history_field(event),
                         trap_cause_field(event, features), event.thread);
    case StopReason::kInterrupted:
      return fmt::format("T{:02x}{}thread:{:x};", kSigInt, history_field(event), event.thread);
    case StopReason::kSignal:
      return fmt::format("T{:02x}{}thread:{:x};", event.signal & 0xff, history_field(event),
                         event.thread);
    case StopReason::kExited:
      return fmt::format("W{:02x}", event.exit_status & 0xff);
    case StopReason::kTerminated:
      return fmt::format("X{:02x}", event.signal & 0xff);
  }
  return fmt::format("T{:02x}thread:{:x};", kSigTrap, event.thread);
}

}  // namespace drvm::gdbstub
