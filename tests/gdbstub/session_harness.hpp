#pragma once
// Drives a StubSession without sockets: frames client packets, runs posted tasks, and splits the
// stub's output back into packets.

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "fake_target.hpp"
#include "gdbstub/packet.hpp"
#include "gdbstub/stub_session.hpp"

namespace drvm::gdbstub::testing {

class SessionHarness {
 public:
  explicit SessionHarness(SessionOptions options = {}, int threads = 2)
      : target(threads),
        session_(
            target,
            [this](std::function<void()> task) {
              std::lock_guard lock(mutex_);
              tasks_.push_back(std::move(task));
            },
            [this](std::string_view line) { logs.emplace_back(line); }, options) {}

  // Runs the stop handlers the target posted (waiting briefly for ones from other threads).
  void run_tasks() {
    for (;;) {
      std::function<void()> task;
      {
        std::lock_guard lock(mutex_);
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::string start() {
    session_.start();
    run_tasks();
    return session_.take_output();
  }

  // Sends raw bytes; returns the raw output.
  std::string send_raw(std::string_view bytes) {
    session_.receive(bytes);
    run_tasks();
    return session_.take_output();
  }

  // The packets (decoded payloads) in the stub's output, acks dropped.
  static std::vector<std::string> packets(std::string_view output) {
    PacketDecoder decoder(1 << 20);
    std::vector<PacketEvent> events;
    decoder.feed(output, events);
    std::vector<std::string> payloads;
    for (const PacketEvent& event : events) {
      if (event.type == PacketEvent::Type::kPacket) payloads.push_back(event.payload);
    }
    return payloads;
  }

  std::vector<std::string> exchange(std::string_view payload) {
    return packets(send_raw(frame_packet(payload)));
  }

  // The one reply to payload ("<none>" if there was none, "<many>" if several).
  std::string request(std::string_view payload) {
    const auto replies = exchange(payload);
    if (replies.empty()) return "<none>";
    if (replies.size() > 1) return "<many>";
    return replies[0];
  }

  StubSession& session() { return session_; }

  FakeTarget target;
  std::vector<std::string> logs;

 private:
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
  StubSession session_;
};

}  // namespace drvm::gdbstub::testing
