// The Navigator against a toy CPU: random programs, random live gdb sessions (continues with
// breakpoints and watchpoints, steps, interrupts), then random reverse and forward moves through
// the past, each checked against the answer computed from the live run's full trace.

#include "vmm/replay/navigator.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "fake_replay_machine.hpp"

namespace drvm::vmm::replay::testing {
namespace {

std::vector<Instr> generate_program(std::mt19937_64& rng) {
  std::vector<Instr> program;
  const auto random_op = [&] {
    Instr in;
    switch (rng() % 4) {
      case 0:
      case 1: {
        in.op = rng() % 3 == 0 ? Instr::kLoad : Instr::kStore;
        in.size = 1u << (rng() % 3);
        in.value = kDataBase + (rng() % (64 / in.size)) * in.size;
        in.reg = static_cast<unsigned>(rng() % 4);
        break;
      }
      case 2:
        in.op = Instr::kAdd;
        in.reg = static_cast<unsigned>(rng() % 4);
        in.value = 1 + rng() % 7;
        break;
      default:
        in.op = Instr::kIo;
        break;
    }
    return in;
  };
  const int blocks = 3 + static_cast<int>(rng() % 4);
  for (int b = 0; b < blocks; ++b) {
    switch (rng() % 3) {
      case 0: {  // a counted loop
        const unsigned reg = static_cast<unsigned>(rng() % 4);
        program.push_back(Instr{Instr::kSet, reg, 0, 0});
        const std::size_t body = program.size();
        for (int i = 0, n = 1 + static_cast<int>(rng() % 4); i < n; ++i) {
          Instr in = random_op();
          if (in.op == Instr::kAdd && in.reg == reg) in.reg = (reg + 1) % 4;
          if (in.op == Instr::kLoad && in.reg == reg) in.reg = (reg + 1) % 4;
          program.push_back(in);
        }
        program.push_back(Instr{Instr::kAdd, reg, 0, 1});
        program.push_back(Instr{Instr::kLoop, reg, 0, 2 + rng() % 5, 1, body});
        break;
      }
      case 1: {  // a REP store
        const std::uint64_t count = 1 + rng() % 8;
        program.push_back(Instr{Instr::kSet, 4, 0, count});
        program.push_back(Instr{Instr::kSet, 5, 0, kDataBase + rng() % (64 - count)});
        program.push_back(Instr{Instr::kRep, 4, 5});
        break;
      }
      default:
        for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i) {
          program.push_back(random_op());
        }
        break;
    }
  }
  program.push_back(Instr{Instr::kJump, 0, 0, 0, 1, 0});
  return program;
}

Trigger random_trigger(std::mt19937_64& rng, std::size_t program_size) {
  Trigger trigger;
  if (rng() % 2 == 0) {
    trigger.kind = TriggerKind::kExecute;
    trigger.address = address_of(rng() % program_size);
    return trigger;
  }
  static constexpr TriggerKind kinds[] = {TriggerKind::kWrite, TriggerKind::kRead,
                                          TriggerKind::kAccess, TriggerKind::kWrite};
  trigger.kind = kinds[rng() % 4];
  trigger.length = 1u << (rng() % 3);
  trigger.address = kDataBase + (rng() % (64 / trigger.length)) * trigger.length;
  return trigger;
}

std::vector<Trigger> random_triggers(std::mt19937_64& rng, std::size_t program_size) {
  std::vector<Trigger> triggers;
  for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i) {
    triggers.push_back(random_trigger(rng, program_size));
  }
  return triggers;
}

bool matches(const Trigger& trigger, const Access& access) {
  const bool kind_ok =
      trigger.kind == TriggerKind::kAccess ||
      (access.write ? trigger.kind == TriggerKind::kWrite : trigger.kind == TriggerKind::kRead);
  return trigger.kind != TriggerKind::kExecute && kind_ok &&
         access.address < trigger.address + trigger.length &&
         trigger.address < access.address + access.size;
}

// A live session on a random program, and the brute-force answers.
class Session {
 public:
  explicit Session(std::uint64_t seed)
      : rng_(seed), program_(generate_program(rng_)), machine_(program_), navigator_(machine_) {}

  void record_live(int actions) {
    add_stop(SegmentEnd{}, true, true);
    for (int a = 0; a < actions; ++a) {
      const unsigned kind = static_cast<unsigned>(rng_() % 10);
      if (kind < 5) {
        // continue with breakpoints/watchpoints; interrupted if nothing hits soon
        const std::vector<Trigger> set = random_triggers(rng_, program_.size());
        machine_.arm(set);
        machine_.interrupt_after = 20 + rng_() % 400;
        std::optional<std::size_t> first;
        // A live continue fires a breakpoint at the stop's own pc, unless the stop reported it.
        if (machine_.reported_here() != machine_.pc()) {
          for (std::size_t t = 0; t < set.size() && !first; ++t) {
            if (set[t].kind == TriggerKind::kExecute && set[t].address == machine_.pc()) first = t;
          }
          machine_.set_reported_here(machine_.pc());
        }
        if (!first) {
          ASSERT_TRUE(machine_
                          .run([&](const ReplayHit& hit) {
                            if (!first) first = hit.trigger;
                            return true;
                          })
                          .ok());
        }
        machine_.interrupt_after = 0;
        if (first) {
          add_stop(SegmentEnd{set[*first], 1, 0}, true, rng_() % 3 == 0);
        } else {
          add_stop(SegmentEnd{}, false, true);
        }
      } else if (kind < 8) {
        machine_.arm({});
        ASSERT_TRUE(machine_.step([](const ReplayHit&) {}).ok());
        add_stop(SegmentEnd{std::nullopt, 0, 1}, true, rng_() % 3 == 0);
      } else {
        machine_.arm({});
        machine_.interrupt_after = 1 + rng_() % 300;
        ASSERT_TRUE(machine_.run([](const ReplayHit&) { return false; }).ok());
        machine_.interrupt_after = 0;
        add_stop(SegmentEnd{}, false, true);
      }
    }
    // Leaving the present takes its snapshot (as the VMM does).
    machine_.snapshots[navigator_.present()] = machine_.state();
    navigator_.set_snapshot(navigator_.present());
    machine_.trace.push_back(machine_.state());
    machine_.tracing = false;
    present_time_ = machine_.state().time;
  }

  std::uint64_t time_of_stop(std::size_t stop) const { return stop_times_.at(stop); }
  std::uint64_t present_time() const { return present_time_; }
  std::uint64_t oldest_time() const { return stop_times_.at(navigator_.oldest()); }
  bool first_of_run(std::uint64_t t) const {
    return t == 0 || machine_.trace[t - 1].pc != machine_.trace[t].pc;
  }
  bool exec_hit(const std::vector<Trigger>& watched, std::uint64_t t) const {
    if (!first_of_run(t)) return false;
    const std::uint64_t pc = address_of(machine_.trace[t].pc);
    return std::any_of(watched.begin(), watched.end(), [&](const Trigger& trigger) {
      return trigger.kind == TriggerKind::kExecute && trigger.address == pc;
    });
  }
  bool data_hit(const std::vector<Trigger>& watched, std::uint64_t t) const {
    for (const Access& access : machine_.trace_accesses.at(t)) {
      for (const Trigger& trigger : watched) {
        if (matches(trigger, access)) return true;
      }
    }
    return false;
  }
  std::uint64_t expected_reverse_continue(const std::vector<Trigger>& watched,
                                          std::uint64_t from) const {
    const std::uint64_t oldest = oldest_time();
    for (std::uint64_t t = from; t-- > oldest;) {
      if (data_hit(watched, t)) return t;
      if (exec_hit(watched, t)) {
        if (t > oldest) return t;
        const Stop& start = navigator_.stop(navigator_.oldest());
        if (start.reported_here != address_of(machine_.trace[t].pc)) return t;
      }
    }
    return oldest;
  }
  // `reported_at_from`: whether the machine, standing at `from`, had reported its breakpoints.
  std::uint64_t expected_forward_continue(const std::vector<Trigger>& watched, std::uint64_t from,
                                          bool reported_at_from) const {
    for (std::uint64_t t = from; t < present_time_; ++t) {
      if (exec_hit(watched, t) && (t > from || !reported_at_from)) return t;
      if (data_hit(watched, t)) return t + 1;
    }
    return present_time_;
  }
  void check_state(std::uint64_t expected_time, const std::string& what) {
    const ToyState& now = machine_.state();
    ASSERT_EQ(now.time, expected_time) << what;
    const ToyState& then = machine_.trace.at(expected_time);
    EXPECT_EQ(now.pc, then.pc) << what;
    EXPECT_EQ(now.regs, then.regs) << what;
    EXPECT_EQ(now.memory, then.memory) << what;
    EXPECT_EQ(now.landmarks, then.landmarks) << what;
  }

  std::mt19937_64& rng() { return rng_; }
  const std::vector<Instr>& program() const { return program_; }
  FakeReplayMachine& machine() { return machine_; }
  Navigator& navigator() { return navigator_; }

 private:
  void add_stop(const SegmentEnd& from, bool resolved, bool snapshot) {
    // As the VMM does at a stop inside a string instruction: its breakpoints were checked when it
    // began, so continuing from here does not check them again.
    if (machine_.state().inside_rep) machine_.set_reported_here(machine_.pc());
    Stop stop;
    stop.from_previous = from;
    stop.resolved = resolved;
    stop.pc = machine_.pc();
    stop.landmarks = machine_.landmarks();
    stop.fingerprint = machine_.fingerprint();
    stop.reported_here = machine_.reported_here();
    stop.snapshot = snapshot;
    const std::size_t index = navigator_.add_stop(stop);
    if (snapshot) machine_.snapshots[index] = machine_.state();
    stop_times_.push_back(machine_.state().time);
  }

  std::mt19937_64 rng_;
  std::vector<Instr> program_;
  FakeReplayMachine machine_;
  Navigator navigator_;
  std::vector<std::uint64_t> stop_times_;
  std::uint64_t present_time_ = 0;
};

TEST(Navigator, RandomSessionsMatchTheTrace) {
  // NAV_SEED=N runs one session (to debug a failure).
  const char* only = std::getenv("NAV_SEED");
  const std::uint64_t first = only ? std::stoull(only) : 1;
  const std::uint64_t last = only ? first : 1000;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    Session session(seed);
    session.record_live(16);
    if (::testing::Test::HasFatalFailure()) return;
    Navigator& nav = session.navigator();
    FakeReplayMachine& machine = session.machine();
    std::mt19937_64& rng = session.rng();
    if (seed % 5 == 0) {
      // Drop the history before some stop with a snapshot.
      for (std::size_t k = nav.present() / 2; k < nav.present(); ++k) {
        if (nav.stop(k).snapshot) {
          nav.drop_before(k);
          break;
        }
      }
    }
    Position at{nav.present(), {}};
    std::uint64_t now = session.present_time();
    for (int move = 0; move < 24; ++move) {
      const std::string what = "seed " + std::to_string(seed) + " move " + std::to_string(move);
      const unsigned kind = static_cast<unsigned>(rng() % 6);
      const bool in_past = now < session.present_time();
      Navigator::Found found;
      std::uint64_t expected = 0;
      try {
        if (kind < 2) {
          const std::vector<Trigger> watched = random_triggers(rng, session.program().size());
          expected = session.expected_reverse_continue(watched, now);
          found = nav.reverse_continue(at, watched);
        } else if (kind < 4) {
          expected = now > session.oldest_time() ? now - 1 : now;
          found = nav.reverse_step(at);
          EXPECT_EQ(found.history_start, now == session.oldest_time()) << what;
        } else if (kind == 4 && in_past) {
          const std::vector<Trigger> watched = random_triggers(rng, session.program().size());
          nav.reach(at);
          const bool reported = machine.reported_here() == machine.pc();
          expected = session.expected_forward_continue(watched, now, reported);
          found = nav.forward_continue(at, watched);
        } else if (in_past) {
          expected = now + 1;
          found = nav.forward_step(at, {});
          if (found.present) expected = now;  // at the present: the VMM steps live
        } else {
          continue;
        }
      } catch (const ReplayError& error) {
        FAIL() << what << " kind " << kind << ": " << error.what();
      }
      const std::string where =
          what + " kind " + std::to_string(kind) + " from " + std::to_string(now) + " -> stop " +
          std::to_string(found.where.stop) + " hits " + std::to_string(found.where.offset.hits) +
          " steps " + std::to_string(found.where.offset.steps);
      session.check_state(expected, where);
      if (::testing::Test::HasFatalFailure()) return;
      at = found.where;
      now = expected;
      // The position found is canonical: reaching it again lands at the same state.
      nav.reach(at);
      session.check_state(expected, where + " (reached again)");
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(Navigator, ReportsADivergedReplay) {
  Session session(7);
  session.record_live(10);
  Navigator& nav = session.navigator();
  // From the first instruction on, the replay's registers differ from the live run's.
  session.machine().diverge_after = 0;
  EXPECT_THROW(
      {
        for (std::size_t k = 1; k <= nav.present(); ++k) nav.reach(Position{k, {}});
        nav.reverse_continue(Position{nav.present(), {}},
                             std::vector<Trigger>{Trigger{TriggerKind::kWrite, kDataBase, 64}});
        nav.reverse_step(Position{nav.present(), {}});
      },
      ReplayError);
}

TEST(Navigator, StopsAtTheStartOfHistory) {
  Session session(11);
  session.record_live(6);
  Navigator& nav = session.navigator();
  const Navigator::Found found = nav.reverse_continue(Position{nav.present(), {}}, {});
  EXPECT_TRUE(found.history_start);
  EXPECT_EQ(found.where.stop, 0u);
  session.check_state(0, "history start");
}

}  // namespace
}  // namespace drvm::vmm::replay::testing
