// Navigator: positions in a recorded run and the searches gdb's reverse commands need.
//
// The live run under gdb is a chain of stops (every stop gdb saw: a breakpoint or watchpoint hit,
// a finished step, an interrupt). Stop 0 is where recording began. Each stop records how the live
// run got to it from the stop before, as a SegmentEnd: "the n-th hit of trigger t" (a continue
// that stopped at a hit; an interrupt, once found again, is "the n-th arrival at its pc") or "one
// instruction" (a step). Some stops also have a snapshot (registers, memory, devices) that the
// machine can restore; every other stop is reached by restoring the last snapshot before it and
// replaying the segment ends in between. Hits are counted per trigger, and arming more triggers
// never changes where a trigger's n-th hit is, so a position is canonical:
//
//   Position{stop k, offset {t, n, s}} = from stop k, run to the n-th hit of t, then s
//   instructions.
//
// Reverse execution (gdb's bc/bs) runs forward from the stop before and takes the last event that
// happened before the position it started from: the last breakpoint arrival, or the instruction
// before the last watched access (a watchpoint in reverse stops before the access, as gdb expects).
// Every stop reached again is checked against the registers recorded live (Fingerprint): a replay
// that leaves the recorded path is an error, never a state that did not happen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "vmm/replay/replay_machine.hpp"

namespace drvm::vmm::replay {

// From an instruction boundary: run to the `hits`-th hit of `trigger` (none when hits is 0), then
// run `steps` instructions.
struct SegmentEnd {
  std::optional<Trigger> trigger;
  std::uint64_t hits = 0;
  std::uint64_t steps = 0;
  friend bool operator==(const SegmentEnd&, const SegmentEnd&) = default;
};

struct Position {
  std::size_t stop = 0;  // a live stop
  SegmentEnd offset;     // from it
  friend bool operator==(const Position&, const Position&) = default;
};

// A stop of the live run.
struct Stop {
  // How the live run got here from the previous stop. A live continue ends at its first hit
  // ({t, 1, 0}), a step after one instruction ({none, 0, 1}).
  SegmentEnd from_previous;
  // False for an interrupt (Ctrl-C) stop: from_previous is found on first use, as the arrival at
  // `pc` where landmarks, fingerprint and memory match (such a stop always has a snapshot).
  bool resolved = true;
  std::uint64_t pc = 0;
  std::uint64_t landmarks = 0;
  Fingerprint fingerprint;
  std::optional<std::uint64_t> reported_here;
  bool snapshot = false;
};

// A replay failed: left the recorded path, or could not find a recorded stop again.
class ReplayError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Navigator {
 public:
  explicit Navigator(ReplayMachine& machine) : machine_(machine) {}

  // The live run stopped (the first call records where recording began, with a snapshot).
  std::size_t add_stop(const Stop& stop);
  const Stop& stop(std::size_t index) const { return stops_.at(index); }
  std::size_t stop_count() const { return stops_.size(); }
  // The newest stop: the present.
  std::size_t present() const { return stops_.size() - 1; }
  // The oldest stop still reachable.
  std::size_t oldest() const { return oldest_; }
  // The machine took a snapshot of `stop` (the present, when gdb first leaves it).
  void set_snapshot(std::size_t stop) { stops_.at(stop).snapshot = true; }
  // Forgets the history before `stop`, which must have a snapshot.
  void drop_before(std::size_t stop);

  struct Found {
    Position where;
    std::optional<std::size_t> trigger;  // index into the watched triggers that stopped it
    bool data = false;                   // that trigger's data hit
    bool history_start = false;          // reverse: nothing before; stands at the oldest stop
    // Forward: stands at the present without a hit (forward_step: before executing anything; the
    // caller goes on live).
    bool present = false;
  };

  // Puts the machine at `where` (throws ReplayError).
  void reach(const Position& where);
  // gdb's reverse-continue from `from` with `watched` armed; the machine stands at the result.
  Found reverse_continue(const Position& from, std::span<const Trigger> watched);
  // gdb's reverse-stepi.
  Found reverse_step(const Position& from);
  // Forward from a position in the past: to the first hit of `watched`, or to the present.
  Found forward_continue(const Position& from, std::span<const Trigger> watched);
  // One instruction forward from a position in the past (a data hit of `watched` on the way is
  // reported as that watchpoint's stop).
  Found forward_step(const Position& from, std::span<const Trigger> watched);
  // The instruction boundary right before `where`, if the history has it.
  std::optional<Position> previous_boundary(const Position& where);

  // Limits a single search to this many single steps (each is a VM exit).
  void set_step_limit(std::uint64_t steps) { step_limit_ = steps; }

 private:
  // One watched trigger's hit seen during a walk.
  struct Sighting {
    std::size_t watched = 0;  // index into the watched triggers
    std::uint64_t count = 0;  // that trigger's hits since the walk's start, this one included
    bool data = false;
    bool at_end = false;  // an execute hit at the boundary the walk ends at
  };
  // Return true to stop the walk at this sighting.
  using Visitor = std::function<bool(const Sighting&)>;
  struct Walk {
    bool completed = false;                     // reached the end (false: the visitor stopped)
    std::vector<std::uint64_t> watched_counts;  // per watched trigger
    std::uint64_t end_count = 0;                // hits of end.trigger
  };
  // From the current boundary (a live stop, or on from where an earlier walk left the machine),
  // executes `end` with `watched` also armed, reporting their hits.
  Walk walk(const SegmentEnd& end, std::span<const Trigger> watched, const Visitor& visit);
  // The execute triggers among `armed` that fire at the current boundary before its instruction
  // runs (none when it has reported its breakpoints already); marks it reported.
  std::vector<std::size_t> fire_here(std::span<const Trigger> armed);
  void resolve(std::size_t stop);
  struct ForwardFrom;
  // Moves `at` past stops reached without an instruction; nullopt at the present.
  std::optional<ForwardFrom> forward_from(Position& at, std::span<const Trigger> watched);
  // Moves forward onto live stop `stop`, which the run reached without an instruction from the
  // stop before (its snapshot is the state).
  Position arrive_unchanged(std::size_t stop);
  // previous_boundary() of a data trigger's n-th hit, quickly: the last arrival at an
  // instruction that ends where the hit left the vCPU (or a string instruction there), then the
  // few steps to the hit. Nullopt when that does not find it (a branch made the access).
  std::optional<Position> previous_of_access(std::size_t stop, const SegmentEnd& hit);
  void check(const RunResult& result) const;
  void verify_stop(std::size_t stop);
  std::size_t snapshot_at_or_before(std::size_t stop) const;

  ReplayMachine& machine_;
  std::vector<Stop> stops_;
  std::size_t oldest_ = 0;
  std::uint64_t step_limit_ = 2'000'000;
};

}  // namespace drvm::vmm::replay
