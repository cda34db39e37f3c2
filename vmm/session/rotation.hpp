// Multiplexing flexible events that outnumber their slots: a window of `capacity` events is
// enabled at a time and slides by one event per tick (perf rotates its flexible list the same
// way), so over F ticks every event is enabled for `capacity` of them.
#pragma once

#include <cstddef>

namespace drvm::vmm::session {

class RotationSchedule {
 public:
  RotationSchedule(std::size_t events, std::size_t capacity)
      : events_(events), capacity_(capacity) {}

  // More events than capacity, and room for at least one: ticks change something.
  bool rotates() const { return capacity_ > 0 && events_ > capacity_; }
  // Whether `event` is in the window now (every event when not rotating). Before the first tick
  // the window is events 0 .. capacity-1.
  bool enabled(std::size_t event) const {
    return !rotates() || (event + events_ - first_) % events_ < capacity_;
  }

  struct Step {
    std::size_t disable = 0;  // leaves the window
    std::size_t enable = 0;   // joins it
  };
  // Only when rotates().
  Step next() {
    const Step step{first_, (first_ + capacity_) % events_};
    first_ = (first_ + 1) % events_;
    return step;
  }

 private:
  std::size_t events_;
  std::size_t capacity_;
  std::size_t first_ = 0;  // the window is first_ .. first_ + capacity_ - 1 (mod events_)
};

}  // namespace drvm::vmm::session
