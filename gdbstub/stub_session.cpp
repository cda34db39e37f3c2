#include "gdbstub/stub_session.hpp"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "gdbstub/stop_reply.hpp"

namespace drvm::gdbstub {
namespace {

constexpr std::string_view kOversizedReply = "E07";  // E2BIG
constexpr std::string_view kMalformedReply = "E16";  // EINVAL

}  // namespace

StubSession::StubSession(DebugTarget& target, Scheduler scheduler, Logger log,
                         SessionOptions options)
    : target_(target),
      scheduler_(std::move(scheduler)),
      log_(std::move(log)),
      options_(options),
      decoder_(options.max_packet_size),
      handler_(target, options.max_packet_size, log_),
      self_(std::make_shared<StubSession*>(this)) {}

StubSession::~StubSession() = default;

void StubSession::start() {
  if (state_ != State::kIdle) return;
  state_ = State::kAttaching;
  reply_on_stop_ = false;
  target_.attach(make_stop_handler());
}

StopHandler StubSession::make_stop_handler() {
  const std::uint64_t generation = ++generation_;
  std::weak_ptr<StubSession*> weak_self = self_;
  Scheduler scheduler = scheduler_;
  return [weak_self, scheduler, generation](const StopEvent& event) {
    scheduler([weak_self, generation, event] {
      if (const auto self = weak_self.lock()) (*self)->on_stop(generation, event);
    });
  };
}

void StubSession::on_stop(std::uint64_t generation, const StopEvent& event) {
  if (generation != generation_ || !target_running()) return;
  state_ = State::kStopped;
  last_stop_ = event;
  if (reply_on_stop_) {
    reply_on_stop_ = false;
    handler_.stop_reported();
    send(format_stop_reply(event, handler_.stop_reply_features()));
  }
  drain_queue();
}

void StubSession::receive(std::string_view bytes) {
  if (state_ == State::kFinished) return;
  std::vector<PacketEvent> events;
  decoder_.feed(bytes, events);
  for (PacketEvent& event : events) {
    if (state_ == State::kFinished) return;
    handle_event(std::move(event));
  }
}

void StubSession::handle_event(PacketEvent event) {
  switch (event.type) {
    case PacketEvent::Type::kAck:
      last_sent_.clear();
      return;
    case PacketEvent::Type::kNack:
      if (!no_ack_mode_ && !last_sent_.empty()) output_ += last_sent_;
      return;
    case PacketEvent::Type::kInterrupt:
      if (state_ == State::kRunning) target_.interrupt();
      return;
    case PacketEvent::Type::kBadChecksum:
      // Never executed: in ack mode gdb resends it, in no-ack mode it is lost.
      if (no_ack_mode_) {
        log_("dropped a packet with a bad checksum");
      } else {
        output_ += '-';
      }
      return;
    case PacketEvent::Type::kPacket:
    case PacketEvent::Type::kOversized:
    case PacketEvent::Type::kMalformed:
      break;
  }
  received_packet_ = true;
  if (!no_ack_mode_) output_ += '+';
  if (state_ == State::kStopped && queued_.empty()) {
    execute(event);
    return;
  }
  if (queued_.size() >= options_.max_queued_packets) {
    log_("dropped a packet sent while the target runs: too many queued");
    return;
  }
  queued_.push_back(std::move(event));
}

void StubSession::drain_queue() {
  while (state_ == State::kStopped && !queued_.empty()) {
    const PacketEvent event = std::move(queued_.front());
    queued_.pop_front();
    execute(event);
  }
}

void StubSession::execute(const PacketEvent& event) {
  if (event.type == PacketEvent::Type::kOversized) {
    log_(fmt::format("rejected a packet longer than {} bytes", options_.max_packet_size));
    send(kOversizedReply);
    return;
  }
  if (event.type == PacketEvent::Type::kMalformed) {
    log_("rejected a packet with a bad escape or run-length sequence");
    send(kMalformedReply);
    return;
  }
  const CommandOutcome outcome = handler_.handle(event.payload, last_stop_);
  for (const std::string& reply : outcome.replies) send(reply);
  if (outcome.start_no_ack_mode) no_ack_mode_ = true;
  switch (outcome.next) {
    case CommandOutcome::Next::kStayStopped:
      break;
    case CommandOutcome::Next::kResume:
      // An exited guest cannot run: repeat how it ended instead of waiting forever.
      if (last_stop_.reason == StopReason::kExited ||
          last_stop_.reason == StopReason::kTerminated) {
        send(format_stop_reply(last_stop_, handler_.stop_reply_features()));
        break;
      }
      state_ = State::kRunning;
      reply_on_stop_ = true;
      target_.resume(outcome.resume, make_stop_handler());
      break;
    case CommandOutcome::Next::kReverse:
      reverse_resume(outcome);
      break;
    case CommandOutcome::Next::kDetach:
    case CommandOutcome::Next::kKill:
      state_ = State::kFinished;
      ++generation_;
      queued_.clear();
      break;
  }
}

void StubSession::reverse_resume(const CommandOutcome& outcome) {
  // As for c/s: an exited guest has no run left to go back through in this session.
  if (last_stop_.reason == StopReason::kExited || last_stop_.reason == StopReason::kTerminated) {
    send(format_stop_reply(last_stop_, handler_.stop_reply_features()));
    return;
  }
  // Running while the target decides, so a stop it reports at once is answered as for c/s.
  state_ = State::kRunning;
  reply_on_stop_ = true;
  const Status status =
      target_.reverse_resume(outcome.reverse_thread, outcome.reverse_action, make_stop_handler());
  if (status.ok()) return;
  // Refused: the target stays stopped and never calls the handler just made.
  ++generation_;
  state_ = State::kStopped;
  reply_on_stop_ = false;
  for (const std::string& reply :
       handler_.reverse_refused(status, outcome.reverse_action).replies) {
    send(reply);
  }
}

void StubSession::disconnect() {
  if (state_ == State::kFinished) return;
  const bool attached = state_ != State::kIdle;
  state_ = State::kFinished;
  ++generation_;
  queued_.clear();
  if (attached) target_.disconnect(received_packet_);
}

void StubSession::detach() {
  if (state_ == State::kFinished) return;
  const bool attached = state_ != State::kIdle;
  state_ = State::kFinished;
  ++generation_;
  queued_.clear();
  if (attached) target_.detach();
}

void StubSession::send(std::string_view payload) {
  std::string framed = frame_packet(payload);
  output_ += framed;
  if (!no_ack_mode_) last_sent_ = std::move(framed);
}

std::string StubSession::take_output() {
  return std::exchange(output_, {});
}

}  // namespace drvm::gdbstub
