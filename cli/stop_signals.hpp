// SIGINT and SIGTERM as requests to stop cleanly: `drvm run` stops its vCPUs and reports, `drvm
// test` stops its children and writes its reports. The first signal calls the handler (on a
// thread of its own, never in signal context); a second one, while drvm is still shutting down,
// exits at once.
#pragma once

#include <atomic>
#include <csignal>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

namespace drvm::cli {

class StopSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts from now
  // on, and starts the thread that waits for them. Construct it before any other thread exists.
  // `second_signal_status`: the status a second signal exits with.
  explicit StopSignals(int second_signal_status);
  // Stops waiting and restores the signal mask; a signal still pending then acts as usual.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Called once, with the signal number, for the first signal; called at once if that signal
  // arrived before the handler was set. The handler runs under a lock and must not block.
  void set_handler(std::function<void(int)> handler);
  // After it returns the handler is never called again (a call under way has finished).
  void clear_handler();

  // Sets a handler for its own lifetime: for handlers that use objects of a shorter life.
  class ScopedHandler {
   public:
    ScopedHandler(StopSignals& signals, std::function<void(int)> handler) : signals_(signals) {
      signals_.set_handler(std::move(handler));
    }
    ~ScopedHandler() { signals_.clear_handler(); }
    ScopedHandler(const ScopedHandler&) = delete;
    ScopedHandler& operator=(const ScopedHandler&) = delete;

   private:
    StopSignals& signals_;
  };
  // The first signal received, or 0.
  int received() const { return received_.load(); }

 private:
  void wait_main();

  sigset_t signals_{};
  sigset_t previous_mask_{};
  int second_signal_status_;
  std::mutex mutex_;
  std::function<void(int)> handler_;
  std::atomic<int> received_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// "SIGINT", "SIGTERM", or "signal N".
std::string_view signal_name(int signal);

}  // namespace drvm::cli
