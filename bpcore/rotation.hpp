// Rotation of flexible events that outnumber their slots, as perf does it (kernel/events/core.c:
// perf_rotate_context() moves the first flexible event to the end of the list, so the next
// schedule starts one event further): the flexible events form a ring whose head moves by one
// at each rotation. BreakpointManager::schedule() places flexible events from the head of its
// vCPU's ring, and rotate() turns it: an owner that multiplexes calls rotate() on its clock's
// ticks, and the manager keeps each event's time enabled and time running on that clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bpcore/event.hpp"
#include "bpcore/slot_layout.hpp"
#include "bpcore/types.hpp"

namespace drvm::bp {

class RotationRing {
 public:
  /// The position, in a list of `events` flexible events, that is scheduled first.
  std::size_t head(std::size_t events) const {
    return events == 0 ? 0 : static_cast<std::size_t>(turns_ % events);
  }
  void turn() { ++turns_; }

 private:
  std::uint64_t turns_ = 0;
};

/// The slots of `pool` that `owner`'s flexible events bound to every vCPU can count on: the pool
/// minus what its pinned events (`pinned`, each with its binding, type and weight) reserve on the
/// busiest vCPU, by SlotConstraints' rule. A pinned event that cannot be reserved is left out (the
/// manager refuses it too).
std::uint32_t flexible_budget(const SlotLayout& host, std::uint32_t vcpus, TargetId owner,
                              PoolIndex pool, std::span<const EventSpec> pinned);

}  // namespace drvm::bp
