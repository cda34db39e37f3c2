// Rotation of flexible events that outnumber their slots, as perf does it (kernel/events/core.c:
// perf_rotate_context() moves the first flexible event to the end of the list, so the next
// schedule starts one event further): the flexible events form a ring whose head moves by one
// at each rotation. BreakpointManager::schedule() places flexible events from the head of its
// vCPU's ring (rotate() turns it); a Multiplexer turns a ring on an owner's clock for an owner
// that switches its events on and off itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

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

/// One owner's flexible events multiplexed on the slots its pinned events leave: `capacity` of
/// the `events` hold the slots at a time (a window from the ring's head), and every `interval_ns`
/// of the owner's clock the ring turns, so over `events` ticks each event holds the slots for
/// `capacity` of them. The owner applies each tick (disables the event that leaves, enables the
/// one that joins) and reads each event's times here, which perf keeps the same way: time enabled
/// runs from the start, time running only in the window. The clock starts at 0 and never goes
/// back. Not thread-safe.
class Multiplexer {
 public:
  Multiplexer() = default;  // nothing to multiplex
  Multiplexer(std::size_t events, std::uint32_t capacity, std::uint64_t interval_ns);

  /// More events than capacity, and room for at least one: ticks change something.
  bool rotates() const { return capacity_ > 0 && events_ > capacity_; }
  std::uint64_t interval_ns() const { return interval_ns_; }
  /// Whether `event` holds the slots now (every event when not rotating). Before the first tick
  /// the window is events 0 .. capacity-1.
  bool holds_slots(std::size_t event) const;

  struct Step {
    std::size_t leave = 0;  // disable this event first, so that
    std::size_t join = 0;   // this one finds its slot
  };
  /// At `now`: when rotating and an interval has passed since the last tick, accounts the window's
  /// time running up to now, turns the ring and returns what the owner must apply.
  std::optional<Step> tick(std::uint64_t now);

  struct Times {
    std::uint64_t enabled = 0;
    std::uint64_t running = 0;
  };
  /// perf's time enabled and time running of `event` at `now`.
  Times times(std::size_t event, std::uint64_t now) const;

 private:
  std::size_t events_ = 0;
  std::uint32_t capacity_ = 0;
  std::uint64_t interval_ns_ = 0;
  RotationRing ring_;
  std::uint64_t last_tick_ = 0;
  std::vector<std::uint64_t> running_;  // per event: time in the window up to last_tick_
};

}  // namespace drvm::bp
