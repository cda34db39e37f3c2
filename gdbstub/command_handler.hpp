#pragma once
// Executes one decoded packet against a stopped DebugTarget and says what to send back and
// whether the target runs next. Holds the per-connection protocol state (selected threads,
// features gdb announced); run control itself belongs to StubSession.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gdbstub/debug_target.hpp"
#include "gdbstub/stop_reply.hpp"

namespace drvm::gdbstub {

struct CommandOutcome {
  enum class Next {
    kStayStopped,  // send the replies and read the next packet
    kResume,       // send the replies (none), then resume the target with `resume`
    kReverse,      // no replies; run `reverse_thread` backwards (bc/bs) with `reverse_action`
    kDetach,       // send the replies, then close the connection; the target runs on
    kKill,         // no reply; the target is gone, close the connection
  };
  std::vector<std::string> replies;  // payloads, in order
  Next next = Next::kStayStopped;
  ResumeRequest resume;
  ThreadId reverse_thread = 0;
  ThreadAction reverse_action = ThreadAction::kContinue;  // kContinue (bc) or kStep (bs)
  bool start_no_ack_mode = false;  // QStartNoAckMode: no acks once the reply is sent
};

class CommandHandler {
 public:
  using Logger = std::function<void(std::string_view)>;

  // max_packet_size is the PacketSize announced in qSupported; replies stay within it.
  CommandHandler(DebugTarget& target, std::size_t max_packet_size, Logger log);

  // last_stop: the stop the target is in (for '?', qC and the default thread).
  CommandOutcome handle(std::string_view payload, const StopEvent& last_stop);

  // The replies to a bc/bs the target refused: its message on gdb's console (O packets), then
  // E<code>, as gdb shows a failed resume ("Remote failure reply: E<code>").
  CommandOutcome reverse_refused(const Status& status, ThreadAction action);

  StopReplyFeatures stop_reply_features() const { return features_; }
  // A stop reply naming a thread went to gdb: gdb then takes that thread as the one `g`, `p`,
  // `m` and the like address (it records it as the general thread and sends no Hg for it), so
  // the Hg selection falls back to the stopped thread, as in gdbserver.
  void stop_reported() { general_thread_ = 0; }

 private:
  CommandOutcome query(std::string_view payload);
  CommandOutcome query_supported(std::string_view payload);
  CommandOutcome read_features(std::string_view args);
  CommandOutcome monitor(std::string_view hex_command);
  CommandOutcome thread_list(bool first);
  CommandOutcome set_thread(std::string_view args);
  CommandOutcome thread_alive(std::string_view args);
  CommandOutcome read_registers();
  CommandOutcome write_registers(std::string_view hex);
  CommandOutcome read_register(std::string_view args);
  CommandOutcome write_register(std::string_view args);
  CommandOutcome read_memory(std::string_view args);
  CommandOutcome write_memory_hex(std::string_view args);
  CommandOutcome write_memory_binary(std::string_view args);
  CommandOutcome breakpoint(std::string_view args, bool insert);
  CommandOutcome legacy_resume(std::string_view args, bool step, bool with_signal);
  CommandOutcome vcont(std::string_view args);
  CommandOutcome reverse(ThreadAction action);
  void append_console_output(CommandOutcome& outcome, std::string_view text) const;
  CommandOutcome status_reply(const Status& status, std::string_view what);

  ThreadId general_thread() const;
  ThreadId continue_thread() const;
  bool valid_thread(ThreadId thread) const;

  DebugTarget& target_;
  std::size_t max_packet_size_;
  Logger log_;
  StopReplyFeatures features_;
  StopEvent last_stop_;
  ThreadId general_thread_ = 0;   // Hg; 0 = the stopped thread
  ThreadId continue_thread_ = 0;  // Hc; 0 = the stopped thread
  int next_thread_in_list_ = 1;   // qsThreadInfo cursor
};

}  // namespace drvm::gdbstub
