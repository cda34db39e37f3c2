// Time source for event time accounting; injectable so tests are deterministic.
#pragma once

#include <cstdint>

namespace drvm::bp {

/// Nanoseconds from an arbitrary, monotonic origin.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::uint64_t now_ns() = 0;
};

/// std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  std::uint64_t now_ns() override;
};

/// A clock that only moves when told to (tests, replay).
class ManualClock final : public Clock {
 public:
  std::uint64_t now_ns() override { return now_; }
  void advance(std::uint64_t ns) { now_ += ns; }
  void set(std::uint64_t ns) { now_ = ns; }

 private:
  std::uint64_t now_ = 0;
};

}  // namespace drvm::bp
