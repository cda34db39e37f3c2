#include "stop_signals.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

namespace drvm::cli {

StopSignals::StopSignals(int second_signal_status) : second_signal_status_(second_signal_status) {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, &previous_mask_);
  thread_ = std::thread([this] { wait_main(); });
}

StopSignals::~StopSignals() {
  stopping_.store(true);
  // Wakes the waiting thread: a signal directed at it is taken by its sigwait().
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

void StopSignals::set_handler(std::function<void(int)> handler) {
  std::lock_guard lock(mutex_);
  if (const int signal = received_.load(); signal != 0) {
    if (handler) handler(signal);
    return;
  }
  handler_ = std::move(handler);
}

void StopSignals::clear_handler() {
  std::lock_guard lock(mutex_);
  handler_ = {};
}

void StopSignals::wait_main() {
  for (;;) {
    int signal = 0;
    if (sigwait(&signals_, &signal) != 0) continue;
    if (stopping_.load()) return;
    if (received_.load() != 0) {
      // The user insists: no more waiting for a clean end.
      static constexpr char kMessage[] = "drvm: second interrupt: exiting at once\n";
      (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      ::_exit(second_signal_status_);
    }
    std::lock_guard lock(mutex_);
    received_.store(signal);
    if (handler_) std::exchange(handler_, {})(signal);
  }
}

std::string_view signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "a signal";
  }
}

}  // namespace drvm::cli
