// Scheduler: pinned before flexible, rotation, time running, kError, effective DRs.
#include <gtest/gtest.h>

#include "bpcore/manager.hpp"
#include "test_support.hpp"

namespace drvm::bp {
namespace {

using test::exec;
using test::must;
using test::spec;
using test::write;

class Scheduler : public ::testing::Test {
 protected:
  ManualClock clock;
  BreakpointManager m{ManagerConfig{2, SlotLayout::mixed(4)}, &clock};

  std::vector<EventId> flexible(int n, VcpuId v) {
    std::vector<EventId> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(must(m.create(spec(exec(0x1000 + i), Binding::target_on(1, v), false))));
    }
    return ids;
  }
  std::vector<int> active(const std::vector<EventId>& ids) {
    std::vector<int> on;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (m.state(ids[i]).value() == EventState::kActive) on.push_back(static_cast<int>(i));
    }
    return on;
  }
};

TEST_F(Scheduler, EffectiveRegistersEncodeTheHardwareSlots) {
  const EventId x = must(m.create(spec(exec(0x401000), Binding::on_vcpu(0))));
  const EventId w = must(m.create(spec(write(0x8000, 8), Binding::target_all(1))));
  const EventId r = must(m.create(spec({0x9000, 2, BpType::kRead}, Binding::target_on(1, 0))));
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.slot_event[0], x);
  EXPECT_EQ(eff.slot_event[1], w);
  EXPECT_EQ(eff.slot_event[2], r);
  EXPECT_EQ(eff.used_mask, 0b111u);
  EXPECT_EQ(eff.read_filter_mask, 0b100u);
  EXPECT_EQ(eff.dr[0], 0x401000u);
  EXPECT_EQ(eff.dr[1], 0x8000u);
  EXPECT_EQ(eff.dr[2], 0x9000u);
  EXPECT_EQ(eff.dr[3], 0u);
  EXPECT_EQ(eff.dr7, 0x2u | 0x8u | 0x20u | dr7::kGe | (0b1001ull << 20) | (0b0111ull << 24));
  EXPECT_EQ(eff.slot_attr[2], (BpAttr{0x9000, 2, BpType::kRead}));
  // vCPU 1 only sees the all-vCPU event.
  const EffectiveSet& other = m.schedule(1);
  EXPECT_EQ(other.used_mask, 1u);
  EXPECT_EQ(other.slot_event[0], w);
}

TEST_F(Scheduler, NothingChangedMeansSameGeneration) {
  must(m.create(spec(exec(0x1000), Binding::target_all(1))));
  const std::uint64_t g = m.schedule(0).generation;
  EXPECT_FALSE(m.needs_schedule(0));
  EXPECT_EQ(m.schedule(0).generation, g);
  const EventId e = must(m.create(spec(exec(0x2000), Binding::target_on(1, 1))));
  EXPECT_FALSE(m.needs_schedule(0));  // only vCPU 1 is affected
  EXPECT_TRUE(m.needs_schedule(1));
  ASSERT_TRUE(m.modify(e, exec(0x2000)).ok());  // same attributes: rescheduled, unchanged
  const std::uint64_t g1 = m.schedule(1).generation;
  ASSERT_TRUE(m.modify(e, exec(0x2000)).ok());
  EXPECT_EQ(m.schedule(1).generation, g1);
  ASSERT_TRUE(m.modify(e, exec(0x2001)).ok());
  EXPECT_EQ(m.schedule(1).generation, g1 + 1);
}

TEST_F(Scheduler, PinnedGoFirstFlexibleShareTheRest) {
  const auto flex = flexible(3, 0);
  const EventId p1 = must(m.create(spec(exec(0x10), Binding::target_on(2, 0))));
  const EventId p2 = must(m.create(spec(exec(0x20), Binding::on_vcpu(0))));
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(m.state(p1).value(), EventState::kActive);
  EXPECT_EQ(m.state(p2).value(), EventState::kActive);
  EXPECT_EQ(active(flex), (std::vector<int>{0, 1}));
  EXPECT_EQ(eff.slot_event[0], p2);  // vCPU-bound first, then target-bound, then flexible
  EXPECT_EQ(eff.slot_event[1], p1);
}

TEST_F(Scheduler, RotationIsRoundRobin) {
  const auto ids = flexible(6, 0);
  m.schedule(0);
  EXPECT_EQ(active(ids), (std::vector<int>{0, 1, 2, 3}));
  ASSERT_TRUE(m.rotate(0));
  EXPECT_EQ(active(ids), (std::vector<int>{1, 2, 3, 4}));
  ASSERT_TRUE(m.rotate(0));
  EXPECT_EQ(active(ids), (std::vector<int>{2, 3, 4, 5}));
  ASSERT_TRUE(m.rotate(0));
  EXPECT_EQ(active(ids), (std::vector<int>{0, 3, 4, 5}));
  // Events that stay keep their slots: 0, 4 and 5 stay, 3 leaves, 1 takes its slot.
  const EffectiveSet& eff = m.effective(0);
  EXPECT_EQ(eff.used_mask, 0xfu);
  const std::array<EventId, kMaxSlots> before = eff.slot_event;
  ASSERT_TRUE(m.rotate(0));
  EXPECT_EQ(active(ids), (std::vector<int>{0, 1, 4, 5}));
  const EffectiveSet& next = m.effective(0);
  for (unsigned s = 0; s < 4; ++s) {
    if (before[s] == ids[3]) {
      EXPECT_EQ(next.slot_event[s], ids[1]);
    } else {
      EXPECT_EQ(next.slot_event[s], before[s]) << s;
    }
  }
}

TEST_F(Scheduler, NoRotationWhenEverythingFits) {
  const auto ids = flexible(4, 0);
  m.schedule(0);
  EXPECT_FALSE(m.rotate(0));
  EXPECT_EQ(active(ids).size(), 4u);
}

TEST_F(Scheduler, TimeRunningFollowsRotation) {
  const auto ids = flexible(5, 0);
  m.schedule(0);
  for (int tick = 0; tick < 10; ++tick) {
    clock.advance(100);
    ASSERT_TRUE(m.rotate(0));
  }
  std::uint64_t total_running = 0;
  for (EventId id : ids) {
    const EventReading r = m.read(id).value();
    EXPECT_EQ(r.time_enabled, 1000u);
    EXPECT_EQ(r.time_running, 800u);  // 4 slots for 5 events, fair round robin
    total_running += r.time_running;
  }
  EXPECT_EQ(total_running, 4000u);
}

TEST_F(Scheduler, ScaledCountEstimate) {
  const auto ids = flexible(8, 0);
  m.schedule(0);
  DispatchResult out;
  for (int tick = 0; tick < 8; ++tick) {
    clock.advance(10);
    for (unsigned s = 0; s < 4; ++s) m.dispatch(0, DbHit{std::uint64_t{1} << s, 0}, out);
    m.rotate(0);
  }
  for (EventId id : ids) {
    const EventReading r = m.read(id).value();
    EXPECT_EQ(r.time_running * 2, r.time_enabled);
    EXPECT_EQ(r.value, 4u);  // one hit per tick while on; 4 ticks on of 8
    EXPECT_EQ(r.value * r.time_enabled / r.time_running, 8u);
  }
}

TEST_F(Scheduler, PinnedThatDoesNotFitGoesToError) {
  // Two targets may each reserve 4 slots; together they do not fit.
  std::vector<EventId> first;
  for (int i = 0; i < 3; ++i)
    first.push_back(must(m.create(spec(exec(i), Binding::target_all(1)))));
  const EventId a = must(m.create(spec(exec(0x100), Binding::target_all(2))));
  const EventId b = must(m.create(spec(exec(0x200), Binding::target_all(2))));
  m.schedule(0);
  EXPECT_EQ(m.state(a).value(), EventState::kActive);
  EXPECT_EQ(m.state(b).value(), EventState::kError);
  // Other vCPUs drop an event that went to kError.
  EXPECT_TRUE(m.needs_schedule(1));
  EXPECT_EQ(m.schedule(1).used_mask, 0xfu);
  for (unsigned s = 0; s < 4; ++s) EXPECT_NE(m.effective(1).slot_event[s], b);
  // Room again: enable() brings it back.
  ASSERT_TRUE(m.destroy(first[0]).ok());
  ASSERT_TRUE(m.enable(b).ok());
  m.schedule(0);
  EXPECT_EQ(m.state(b).value(), EventState::kActive);
}

TEST_F(Scheduler, AllVcpuEventIsActiveWhileOnAnyVcpu) {
  const EventId e = must(m.create(spec(exec(0x100), Binding::target_all(1))));
  m.schedule(0);
  m.schedule(1);
  clock.advance(10);
  ASSERT_TRUE(m.disable(e).ok());
  EXPECT_EQ(m.state(e).value(), EventState::kOff);
  clock.advance(10);
  ASSERT_TRUE(m.enable(e).ok());
  m.schedule(0);
  EXPECT_EQ(m.state(e).value(), EventState::kActive);
  clock.advance(10);
  m.schedule(1);
  EXPECT_EQ(m.read(e).value().time_running, 20u);
}

TEST(SchedulerLayouts, SoftwareSlotsBeyondTheHardwareFour) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::mixed(16)}, &clock);
  std::vector<EventId> ids;
  for (int i = 0; i < 16; ++i)
    ids.push_back(must(m.create(spec(exec(0x1000 + i), Binding::target_all(1)))));
  EXPECT_EQ(m.create(spec(exec(0), Binding::target_all(1))).error(), Error::kNoSpace);
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.used_mask, 0xffffu);
  EXPECT_EQ(eff.slot_event[15], ids[15]);
  EXPECT_EQ(eff.slot_attr[15], exec(0x100f));
  EXPECT_EQ(eff.dr[3], 0x1003u);  // only slots 0-3 are encoded
  EXPECT_EQ(eff.dr7 & 0xff, 0xaau);
}

TEST(SchedulerLayouts, SeparatePoolsUseTheirOwnSlots) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::separate(2, 2)}, &clock);
  const EventId w = must(m.create(spec(write(0x2000), Binding::target_all(1))));
  const EventId x = must(m.create(spec(exec(0x1000), Binding::target_all(1))));
  const auto f = must(m.create(spec(exec(0x1001), Binding::target_all(1), false)));
  const auto g = must(m.create(spec(exec(0x1002), Binding::target_all(1), false)));
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.slot_event[0], x);
  EXPECT_EQ(eff.slot_event[6], w);  // data pool: after 2 host + 4 guest instruction slots
  EXPECT_EQ(eff.slot_event[1], f);  // the instruction pool is full: g waits
  EXPECT_EQ(m.state(g).value(), EventState::kInactive);
  EXPECT_TRUE(m.rotate(0));
  EXPECT_EQ(m.state(g).value(), EventState::kActive);
}

TEST(SchedulerLayouts, WeightTakesSeveralSlots) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::mixed(8)}, &clock);
  EventSpec heavy = spec(write(0x3000), Binding::target_all(1));
  heavy.weight = 3;
  const EventId h = must(m.create(heavy));
  const EventId one = must(m.create(spec(exec(0x10), Binding::target_all(1))));
  EventSpec too_heavy = heavy;
  too_heavy.weight = 5;
  EXPECT_EQ(m.create(too_heavy).error(), Error::kNoSpace);
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.used_mask, 0xfu);
  for (unsigned s = 0; s < 3; ++s) EXPECT_EQ(eff.slot_event[s], h);
  EXPECT_EQ(eff.slot_event[3], one);
  DispatchResult out;
  m.dispatch(0, DbHit{0b111, 0}, out);  // several slots of one event: one hit
  EXPECT_EQ(out.fired_count, 1u);
  EXPECT_EQ(m.read(h).value().value, 1u);
}

TEST(SchedulerConfig, RejectsInvalidLayouts) {
  EXPECT_THROW(BreakpointManager(ManagerConfig{0, SlotLayout::mixed()}), std::invalid_argument);
  EXPECT_THROW(BreakpointManager(ManagerConfig{1, SlotLayout::separate(40, 40)}),
               std::invalid_argument);
  EXPECT_THROW(BreakpointManager(ManagerConfig{1, SlotLayout::separate(0, 4)}),
               std::invalid_argument);
}

}  // namespace
}  // namespace drvm::bp
