#include "vmm/replay/navigator.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace drvm::vmm::replay {
namespace {

// The triggers armed for one walk: each distinct trigger once; the walk's own end trigger and the
// watched ones may coincide.
struct Arrangement {
  std::vector<Trigger> armed;
  std::vector<std::size_t> watched_slot;  // per watched trigger
  std::optional<std::size_t> end_slot;

  std::size_t slot_of(const Trigger& trigger) {
    const auto it = std::find(armed.begin(), armed.end(), trigger);
    if (it != armed.end()) return static_cast<std::size_t>(it - armed.begin());
    armed.push_back(trigger);
    return armed.size() - 1;
  }
  Arrangement(const SegmentEnd& end, std::span<const Trigger> watched) {
    if (end.hits > 0 && end.trigger) end_slot = slot_of(*end.trigger);
    for (const Trigger& trigger : watched) watched_slot.push_back(slot_of(trigger));
  }
};

bool is_exec(const Trigger& trigger) {
  return trigger.kind == TriggerKind::kExecute;
}

}  // namespace

std::size_t Navigator::add_stop(const Stop& stop) {
  if (stops_.empty() && !stop.snapshot) {
    throw ReplayError("the first stop of a recording needs a snapshot");
  }
  stops_.push_back(stop);
  return stops_.size() - 1;
}

void Navigator::drop_before(std::size_t stop) {
  if (stop >= stops_.size() || !stops_[stop].snapshot) {
    throw ReplayError("history can only start at a stop with a snapshot");
  }
  oldest_ = std::max(oldest_, stop);
}

std::size_t Navigator::snapshot_at_or_before(std::size_t stop) const {
  for (std::size_t k = stop + 1; k-- > oldest_;) {
    if (stops_[k].snapshot) return k;
  }
  throw ReplayError("no snapshot at or before the position (history dropped)");
}

std::vector<std::size_t> Navigator::fire_here(std::span<const Trigger> armed) {
  const std::uint64_t pc = machine_.pc();
  std::vector<std::size_t> fired;
  if (machine_.reported_here() == pc) return fired;
  for (std::size_t slot = 0; slot < armed.size(); ++slot) {
    if (is_exec(armed[slot]) && armed[slot].address == pc) fired.push_back(slot);
  }
  machine_.set_reported_here(pc);
  return fired;
}

void Navigator::check(const RunResult& result) const {
  if (result.ok()) return;
  switch (result.kind) {
    case RunResult::Kind::kDiverged:
      throw ReplayError("the replay left the recorded run: " + result.why);
    case RunResult::Kind::kEndOfLog:
      throw ReplayError("the replay ran past the end of the recording" +
                        (result.why.empty() ? std::string() : ": " + result.why));
    case RunResult::Kind::kFailed:
    case RunResult::Kind::kStopped:
      break;
  }
  throw ReplayError(result.why.empty() ? std::string("the replay could not run") : result.why);
}

void Navigator::verify_stop(std::size_t stop) {
  if (machine_.fingerprint() == stops_[stop].fingerprint) return;
  throw ReplayError(fmt::format(
      "the replay left the recorded run: the registers at stop {} (pc {:#x}) differ from the "
      "recording",
      stop, stops_[stop].pc));
}

Navigator::Walk Navigator::walk(const SegmentEnd& end, std::span<const Trigger> watched,
                                const Visitor& visit) {
  Arrangement arrangement(end, watched);
  std::vector<std::uint64_t> counts(arrangement.armed.size(), 0);
  const std::optional<std::uint64_t> end_exec =
      end.trigger && end.hits > 0 && is_exec(*end.trigger)
          ? std::optional<std::uint64_t>(end.trigger->address)
          : std::nullopt;
  bool visitor_stopped = false;
  // Reports one hit of `slot` to the visitor for every watched trigger armed there.
  const auto sight = [&](std::size_t slot, bool data, bool may_be_end) {
    for (std::size_t w = 0; w < watched.size(); ++w) {
      if (arrangement.watched_slot[w] != slot) continue;
      const Trigger& trigger = arrangement.armed[slot];
      // An execute trigger at the end's address fires at the same boundaries as the end trigger:
      // its end.hits-th hit is at the boundary the walk ends at (when no steps follow).
      const bool at_end = may_be_end && end.steps == 0 && !data && end_exec &&
                          trigger.address == *end_exec && counts[slot] == end.hits;
      if (visit && visit(Sighting{w, counts[slot], data, at_end})) visitor_stopped = true;
    }
  };
  const auto result = [&](bool completed) {
    Walk walk;
    walk.completed = completed;
    for (std::size_t w = 0; w < watched.size(); ++w) {
      walk.watched_counts.push_back(counts[arrangement.watched_slot[w]]);
    }
    if (arrangement.end_slot) walk.end_count = counts[*arrangement.end_slot];
    return walk;
  };

  machine_.arm(arrangement.armed);
  if (end.hits > 0) {
    bool reached = false;
    const auto on_hit = [&](const ReplayHit& hit) {
      ++counts[hit.trigger];
      if (arrangement.end_slot && hit.trigger == *arrangement.end_slot &&
          counts[hit.trigger] == end.hits) {
        reached = true;
      }
      sight(hit.trigger, hit.data, true);
      return reached || visitor_stopped;
    };
    // The execute triggers at the starting boundary fire before the instruction runs.
    bool stop_here = false;
    for (const std::size_t slot : fire_here(arrangement.armed)) {
      stop_here = on_hit(ReplayHit{slot, false}) || stop_here;
    }
    if (!stop_here) check(machine_.run(on_hit));
    if (!reached) return result(false);
  }
  for (std::uint64_t step = 0; step < end.steps; ++step) {
    // Before the instruction runs, the execute triggers at its boundary fire.
    for (const std::size_t slot : fire_here(arrangement.armed)) {
      ++counts[slot];
      sight(slot, false, false);
    }
    if (visitor_stopped) return result(false);
    check(machine_.step([&](const ReplayHit& hit) {
      ++counts[hit.trigger];
      sight(hit.trigger, hit.data, false);
    }));
    if (visitor_stopped) return result(false);
  }
  return result(true);
}

void Navigator::reach(const Position& where) {
  if (where.stop < oldest_ || where.stop >= stops_.size()) {
    throw ReplayError("the position is outside the recorded history");
  }
  const std::size_t base = snapshot_at_or_before(where.stop);
  // Interrupted stops always have a snapshot, so every stop after the base is resolved.
  for (std::size_t k = base + 1; k <= where.stop; ++k) {
    if (!stops_[k].resolved) throw ReplayError("an interrupted stop has no snapshot");
  }
  machine_.restore(base);
  for (std::size_t k = base + 1; k <= where.stop; ++k) {
    walk(stops_[k].from_previous, {}, {});
    verify_stop(k);
    machine_.set_reported_here(stops_[k].reported_here);
  }
  if (where.offset != SegmentEnd{}) walk(where.offset, {}, {});
}

void Navigator::resolve(std::size_t stop) {
  Stop& target = stops_[stop];
  if (target.resolved) return;
  reach(Position{stop - 1, {}});
  const auto matches = [&] {
    return machine_.pc() == target.pc && machine_.landmarks() == target.landmarks &&
           machine_.fingerprint() == target.fingerprint && machine_.memory_matches(stop);
  };
  if (matches()) {
    target.from_previous = SegmentEnd{};
    target.resolved = true;
    return;
  }
  const Trigger arrival{TriggerKind::kExecute, target.pc, 1};
  machine_.arm(std::span(&arrival, 1));
  std::uint64_t arrivals = fire_here(std::span(&arrival, 1)).size();
  bool found = arrivals > 0 && matches();
  if (!found) {
    const RunResult run = machine_.run([&](const ReplayHit&) {
      ++arrivals;
      if (machine_.landmarks() > target.landmarks) return true;  // gone past it
      found = matches();
      return found;
    });
    if (run.kind != RunResult::Kind::kEndOfLog) check(run);
  }
  if (!found) {
    throw ReplayError(fmt::format(
        "the interrupted position at pc {:#x} was not found again (the guest was interrupted "
        "inside a string instruction, or its run depends on time)",
        target.pc));
  }
  target.from_previous = SegmentEnd{arrival, arrivals, 0};
  target.resolved = true;
}

Navigator::Found Navigator::reverse_continue(const Position& from,
                                             std::span<const Trigger> watched) {
  Position at = from;
  for (;;) {
    if (at.offset != SegmentEnd{}) {
      reach(Position{at.stop, {}});
      std::vector<Sighting> seen;
      // The start boundary: a stop reached by firing an execute trigger at its pc has reported it,
      // so the run does not fire it again, but going backwards arrives there.
      const Stop& start = stops_[at.stop];
      const std::uint64_t pc = machine_.pc();
      if (machine_.reported_here() == pc && start.from_previous.trigger &&
          is_exec(*start.from_previous.trigger) && start.from_previous.trigger->address == pc &&
          at.stop > oldest_) {
        for (std::size_t w = 0; w < watched.size(); ++w) {
          if (is_exec(watched[w]) && watched[w].address == pc) seen.push_back(Sighting{w, 0});
        }
      }
      walk(at.offset, watched, [&](const Sighting& sighting) {
        if (sighting.data || !sighting.at_end) seen.push_back(sighting);
        return false;
      });
      if (!seen.empty()) {
        const Sighting& last = seen.back();
        Position hit{at.stop, {}};
        if (last.count > 0) hit.offset = SegmentEnd{watched[last.watched], last.count, 0};
        if (last.data) {
          // Backwards, a watchpoint stops before the instruction that made the access.
          const std::optional<Position> before = previous_boundary(hit);
          if (!before) throw ReplayError("the accessing instruction is before the history");
          hit = *before;
        }
        reach(hit);
        return Found{hit, last.watched, last.data, false, false};
      }
    }
    if (at.stop <= oldest_) {
      reach(Position{oldest_, {}});
      Found found;
      found.where = Position{oldest_, {}};
      found.history_start = true;
      return found;
    }
    resolve(at.stop);
    at = Position{at.stop - 1, stops_[at.stop].from_previous};
  }
}

std::optional<Position> Navigator::previous_boundary(const Position& where) {
  Position at = where;
  for (;;) {
    SegmentEnd offset = at.offset;
    if (offset.steps > 0) {
      --offset.steps;
      return Position{at.stop, offset};
    }
    if (offset.hits == 0) {
      if (at.stop <= oldest_) return std::nullopt;
      resolve(at.stop);
      at = Position{at.stop - 1, stops_[at.stop].from_previous};
      continue;
    }
    if (!is_exec(*offset.trigger)) {
      if (const auto quick = previous_of_access(at.stop, offset)) return quick;
    }
    // Between the trigger's previous hit (or the stop) and this one, step to find the last
    // boundary before it.
    const Trigger trigger = *offset.trigger;
    SegmentEnd anchor{};
    if (offset.hits > 1) anchor = SegmentEnd{trigger, offset.hits - 1, 0};
    reach(Position{at.stop, anchor});
    machine_.arm(std::span(&trigger, 1));
    std::uint64_t steps = 0;
    bool at_stop = false;
    for (;;) {
      const std::uint64_t pc = machine_.pc();
      if (is_exec(trigger) && pc == trigger.address && machine_.reported_here() != pc) {
        if (steps == 0) {
          at_stop = true;  // the first hit is the stop itself
          break;
        }
        anchor.steps = steps - 1;
        return Position{at.stop, anchor};
      }
      if (steps >= step_limit_) {
        throw ReplayError(fmt::format(
            "the previous instruction is more than {} instructions after the last arrival drvm "
            "can run to; set a breakpoint closer to this point",
            step_limit_));
      }
      bool hit = false;
      check(machine_.step([&](const ReplayHit& h) { hit = hit || h.trigger == 0; }));
      ++steps;
      if (hit) {
        anchor.steps = steps - 1;
        return Position{at.stop, anchor};
      }
    }
    if (at_stop) at = Position{at.stop, {}};
  }
}

std::optional<Position> Navigator::previous_of_access(std::size_t stop, const SegmentEnd& hit) {
  reach(Position{stop, hit});
  const std::uint64_t after = machine_.pc();
  std::vector<std::uint64_t> starts = machine_.instructions_ending_at(after);
  starts.push_back(after);  // a string instruction between two iterations
  std::vector<Trigger> watched;
  for (const std::uint64_t start : starts)
    watched.push_back(Trigger{TriggerKind::kExecute, start, 1});
  watched.push_back(*hit.trigger);
  const std::size_t data = watched.size() - 1;
  // The arrivals at candidates after the trigger's previous hit; the writer is among the last.
  std::vector<Sighting> arrivals;
  reach(Position{stop, {}});
  walk(hit, watched, [&](const Sighting& sighting) {
    if (sighting.watched != data && !sighting.at_end) {
      arrivals.push_back(sighting);
    } else if (sighting.watched == data && sighting.count < hit.hits) {
      arrivals.clear();
    }
    return false;
  });
  // From the last arrivals backwards: the one a few steps from the hit made it (a string
  // instruction's iterations keep RIP at its start while they run).
  constexpr int kTries = 4;
  constexpr std::uint64_t kSteps = 16;
  int tries = 0;
  for (auto it = arrivals.rbegin(); it != arrivals.rend() && tries < kTries; ++it, ++tries) {
    SegmentEnd anchor{watched[it->watched], it->count, 0};
    const std::uint64_t start = anchor.trigger->address;
    reach(Position{stop, anchor});
    machine_.arm(std::span(&watched[data], 1));
    for (std::uint64_t steps = 1; steps <= step_limit_; ++steps) {
      bool reached = false;
      check(machine_.step([&](const ReplayHit& h) { reached = reached || h.trigger == 0; }));
      if (reached) {
        // The instruction this step began made the access: its boundary is the one before.
        anchor.steps = steps - 1;
        return Position{stop, anchor};
      }
      if (steps >= kSteps && machine_.pc() != start) break;  // not this one
    }
  }
  return std::nullopt;
}

Position Navigator::arrive_unchanged(std::size_t stop) {
  // No instruction between the stops (a debugger changed the state, or an interrupt was found at
  // the stop before): the state is the later stop's snapshot.
  if (!stops_[stop].snapshot) throw ReplayError("a stop without instructions has no snapshot");
  machine_.restore(stop);
  return Position{stop, {}};
}

Navigator::Found Navigator::reverse_step(const Position& from) {
  const std::optional<Position> before = previous_boundary(from);
  if (!before) {
    reach(Position{oldest_, {}});
    Found found;
    found.where = Position{oldest_, {}};
    found.history_start = true;
    return found;
  }
  reach(*before);
  Found found;
  found.where = *before;
  return found;
}

// Forward from `at` toward the next stop: that stop's segment end, and the watched triggers with
// the end's trigger, armed and counted from `at.stop` up to `at` (the machine stands at `at`).
struct Navigator::ForwardFrom {
  std::size_t next = 0;
  SegmentEnd end;
  Arrangement arrangement;
  std::vector<std::uint64_t> counts;  // per armed slot
  std::optional<std::size_t> end_slot;
};

std::optional<Navigator::ForwardFrom> Navigator::forward_from(Position& at,
                                                              std::span<const Trigger> watched) {
  for (;;) {
    if (at.stop >= present()) {
      if (at.offset != SegmentEnd{}) throw ReplayError("the position is after the present");
      return std::nullopt;
    }
    const std::size_t next = at.stop + 1;
    resolve(next);
    const SegmentEnd end = stops_[next].from_previous;
    if (end == SegmentEnd{}) {
      at = arrive_unchanged(next);
      continue;
    }
    std::vector<Trigger> counted(watched.begin(), watched.end());
    if (end.trigger && end.hits > 0) counted.push_back(*end.trigger);
    reach(Position{at.stop, {}});
    const Walk to_here = walk(at.offset, counted, {});
    ForwardFrom forward{next, end, Arrangement(SegmentEnd{}, counted), {}, std::nullopt};
    forward.counts.assign(forward.arrangement.armed.size(), 0);
    for (std::size_t i = 0; i < counted.size(); ++i) {
      forward.counts[forward.arrangement.watched_slot[i]] = to_here.watched_counts[i];
    }
    if (end.trigger && end.hits > 0) forward.end_slot = forward.arrangement.watched_slot.back();
    machine_.arm(forward.arrangement.armed);
    return forward;
  }
}

Navigator::Found Navigator::forward_continue(const Position& from,
                                             std::span<const Trigger> watched) {
  Position at = from;
  for (;;) {
    std::optional<ForwardFrom> forward = forward_from(at, watched);
    if (!forward) {
      Found found;
      found.where = at;
      found.present = true;
      return found;
    }
    const std::size_t next = forward->next;
    const SegmentEnd end = forward->end;
    Arrangement& arrangement = forward->arrangement;
    std::vector<std::uint64_t>& counts = forward->counts;
    const std::optional<std::size_t> end_slot = forward->end_slot;
    std::optional<std::size_t> stopped_by;
    bool stopped_data = false;
    bool reached = false;
    if (end.hits > 0) {
      const auto on_hit = [&](const ReplayHit& hit) {
        ++counts[hit.trigger];
        if (end_slot && hit.trigger == *end_slot && counts[hit.trigger] == end.hits) {
          reached = true;
        }
        for (std::size_t w = 0; w < watched.size(); ++w) {
          if (arrangement.watched_slot[w] == hit.trigger && !stopped_by) {
            stopped_by = w;
            stopped_data = hit.data;
          }
        }
        return reached || stopped_by.has_value();
      };
      bool stop_here = false;
      for (const std::size_t slot : fire_here(arrangement.armed)) {
        stop_here = on_hit(ReplayHit{slot, false}) || stop_here;
      }
      if (!stop_here) check(machine_.run(on_hit));
    } else {
      // A one-instruction segment: the position is its start.
      const std::uint64_t pc = machine_.pc();
      if (machine_.reported_here() != pc) {
        for (std::size_t w = 0; w < watched.size() && !stopped_by; ++w) {
          if (is_exec(watched[w]) && watched[w].address == pc) stopped_by = w;
        }
        if (stopped_by) {
          machine_.set_reported_here(pc);
          return Found{at, stopped_by, false, false, false};
        }
      }
      check(machine_.step([&](const ReplayHit& hit) {
        for (std::size_t w = 0; w < watched.size(); ++w) {
          if (arrangement.watched_slot[w] == hit.trigger && !stopped_by) {
            stopped_by = w;
            stopped_data = true;
          }
        }
      }));
      reached = true;
    }
    if (reached) {
      verify_stop(next);
      machine_.set_reported_here(stops_[next].reported_here);
      if (stopped_by) return Found{Position{next, {}}, stopped_by, stopped_data, false, false};
      at = Position{next, {}};
      continue;
    }
    const std::size_t w = *stopped_by;
    return Found{Position{at.stop, SegmentEnd{watched[w], counts[arrangement.watched_slot[w]], 0}},
                 stopped_by, stopped_data, false, false};
  }
}

Navigator::Found Navigator::forward_step(const Position& from, std::span<const Trigger> watched) {
  Position at = from;
  for (;;) {
    std::optional<ForwardFrom> forward = forward_from(at, watched);
    if (!forward) {
      Found found;  // the present: the caller steps live
      found.where = at;
      found.present = true;
      return found;
    }
    const std::size_t next = forward->next;
    const SegmentEnd end = forward->end;
    const Arrangement& arrangement = forward->arrangement;
    const std::optional<std::size_t> end_slot = forward->end_slot;
    std::uint64_t end_count = end_slot ? forward->counts[*end_slot] : 0;
    // The next stop's breakpoint would fire right here: this position is that stop.
    const auto next_fires_here = [&] {
      const std::uint64_t pc = machine_.pc();
      return end_slot && is_exec(*end.trigger) && pc == end.trigger->address &&
             machine_.reported_here() != pc && end_count + 1 == end.hits;
    };
    if (next_fires_here()) {
      verify_stop(next);
      machine_.set_reported_here(stops_[next].reported_here);
      at = Position{next, {}};
      continue;
    }
    std::optional<std::size_t> watch_hit;
    check(machine_.step([&](const ReplayHit& hit) {
      if (end_slot && hit.trigger == *end_slot) ++end_count;
      for (std::size_t w = 0; w < watched.size(); ++w) {
        if (hit.data && arrangement.watched_slot[w] == hit.trigger && !watch_hit) watch_hit = w;
      }
    }));
    SegmentEnd offset = at.offset;
    ++offset.steps;
    // A live step's segment is one instruction: every position in it is its start.
    const bool reached =
        end.hits == 0 || next_fires_here() || (!is_exec(*end.trigger) && end_count == end.hits);
    Found found;
    found.where = Position{at.stop, offset};
    found.trigger = watch_hit;
    found.data = watch_hit.has_value();
    if (reached) {
      verify_stop(next);
      machine_.set_reported_here(stops_[next].reported_here);
      found.where = Position{next, {}};
    }
    return found;
  }
}

}  // namespace drvm::vmm::replay
