#pragma once
// One gdb connection's protocol engine, with no I/O: bytes from the client go in through
// receive(), bytes for the client come out of take_output(). It acks, retransmits, queues packets
// that arrive while the target runs, turns Ctrl-C into DebugTarget::interrupt() and stop events
// into stop replies; bc/bs run the target backwards as c/s run it forwards. The transport
// (GdbServer, or a test) runs everything on one thread.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "gdbstub/command_handler.hpp"
#include "gdbstub/debug_target.hpp"
#include "gdbstub/packet.hpp"

namespace drvm::gdbstub {

struct SessionOptions {
  std::size_t max_packet_size = 0x4000;  // PacketSize announced to gdb
  std::size_t max_queued_packets = 64;   // packets held while the target runs
};

class StubSession {
 public:
  // Runs a task later on the session's thread (asio::post for GdbServer); stop handlers given to
  // the target go through it, so the target may call them from any thread.
  using Scheduler = std::function<void(std::function<void()>)>;
  using Logger = std::function<void(std::string_view)>;

  StubSession(DebugTarget& target, Scheduler scheduler, Logger log, SessionOptions options = {});
  ~StubSession();
  StubSession(const StubSession&) = delete;
  StubSession& operator=(const StubSession&) = delete;

  // Attaches to the target; packets received before its stop event are answered after it.
  void start();
  void receive(std::string_view bytes);
  // The client went away: the target keeps its run state (DebugTarget::disconnect) unless the
  // session already ended.
  void disconnect();
  // The server shuts down: detach (the target runs on) unless the session already ended.
  void detach();

  std::string take_output();
  // Detached or killed: the transport should flush the output and close.
  bool finished() const { return state_ == State::kFinished; }
  bool target_running() const { return state_ == State::kRunning || state_ == State::kAttaching; }
  bool no_ack_mode() const { return no_ack_mode_; }

 private:
  enum class State { kIdle, kAttaching, kStopped, kRunning, kFinished };

  StopHandler make_stop_handler();
  void on_stop(std::uint64_t generation, const StopEvent& event);
  void handle_event(PacketEvent event);
  void execute(const PacketEvent& event);
  void reverse_resume(const CommandOutcome& outcome);
  void drain_queue();
  void send(std::string_view payload);

  DebugTarget& target_;
  Scheduler scheduler_;
  Logger log_;
  SessionOptions options_;
  PacketDecoder decoder_;
  CommandHandler handler_;
  State state_ = State::kIdle;
  bool no_ack_mode_ = false;
  bool received_packet_ = false;  // the client sent a packet (not only connected)
  bool reply_on_stop_ = false;    // a resume packet waits for its stop reply
  StopEvent last_stop_;
  std::uint64_t generation_ = 0;  // stop handlers from earlier attach/resume calls are stale
  std::deque<PacketEvent> queued_;
  std::string output_;
  std::string last_sent_;  // for retransmission on '-'
  // Stop handlers hold a weak reference so one that fires after the session is gone is dropped.
  std::shared_ptr<StubSession*> self_;
};

}  // namespace drvm::gdbstub
