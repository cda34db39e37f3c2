#pragma once
// Stop replies (T/W/X packets) for a StopEvent.

#include <string>

#include "gdbstub/debug_target.hpp"

namespace drvm::gdbstub {

struct StopReplyFeatures {
  bool swbreak = false;  // gdb announced swbreak+ in qSupported
  bool hwbreak = false;  // gdb announced hwbreak+
};

std::string format_stop_reply(const StopEvent& event, StopReplyFeatures features);

}  // namespace drvm::gdbstub
