// A request to stop `drvm test` early (SIGINT/SIGTERM): running children are killed, cases not
// started yet are not started, and every unfinished case is reported as interrupted.
#pragma once

#include <atomic>

namespace drvm::harness {

class Cancellation {
 public:
  Cancellation();
  ~Cancellation();
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // From any thread (the signal-waiting thread); the first call's signal is kept.
  void request(int signal);
  bool requested() const { return signal_.load() != 0; }
  int signal() const { return signal_.load(); }
  // Readable once requested: poll() it beside a child's pipes.
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::atomic<int> signal_{0};
};

}  // namespace drvm::harness
