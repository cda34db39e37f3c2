// Rotation of flexible events outside the manager: the Multiplexer's window (capacity events at
// a time, sliding by one per tick, so every event is in the window for the same share of the
// ticks), when it ticks, the times it keeps, and the budget pinned events leave.
#include "bpcore/rotation.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace drvm::bp {
namespace {

constexpr std::uint64_t kInterval = 100;

TEST(Multiplexer, NoRotationWhenEverythingFits) {
  Multiplexer fits(4, 4, kInterval);
  EXPECT_FALSE(fits.rotates());
  for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(fits.holds_slots(i));
  EXPECT_FALSE(fits.tick(10 * kInterval));
  const Multiplexer no_room(3, 0, kInterval);
  EXPECT_FALSE(no_room.rotates());
  EXPECT_FALSE(Multiplexer().rotates());
}

TEST(Multiplexer, WindowSlidesByOneEvent) {
  Multiplexer mux(5, 2, kInterval);
  ASSERT_TRUE(mux.rotates());
  EXPECT_TRUE(mux.holds_slots(0));
  EXPECT_TRUE(mux.holds_slots(1));
  EXPECT_FALSE(mux.holds_slots(2));
  const std::optional<Multiplexer::Step> first = mux.tick(kInterval);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->leave, 0u);
  EXPECT_EQ(first->join, 2u);
  EXPECT_FALSE(mux.holds_slots(0));
  EXPECT_TRUE(mux.holds_slots(1));
  EXPECT_TRUE(mux.holds_slots(2));
  ASSERT_TRUE(mux.tick(2 * kInterval));
  ASSERT_TRUE(mux.tick(3 * kInterval));
  const std::optional<Multiplexer::Step> wrap = mux.tick(4 * kInterval);  // window 3,4 -> 4,0
  ASSERT_TRUE(wrap);
  EXPECT_EQ(wrap->leave, 3u);
  EXPECT_EQ(wrap->join, 0u);
  EXPECT_TRUE(mux.holds_slots(4));
  EXPECT_TRUE(mux.holds_slots(0));
}

TEST(Multiplexer, EveryEventGetsCapacityOutOfEveryNTicks) {
  for (std::size_t events = 2; events <= 9; ++events) {
    for (std::uint32_t capacity = 1; capacity < events; ++capacity) {
      Multiplexer mux(events, capacity, kInterval);
      std::vector<std::size_t> ticks_in(events, 0);
      for (std::size_t tick = 0; tick < events * 3; ++tick) {
        std::size_t holding = 0;
        for (std::size_t e = 0; e < events; ++e) {
          if (mux.holds_slots(e)) {
            ++ticks_in[e];
            ++holding;
          }
        }
        ASSERT_EQ(holding, capacity);
        const std::optional<Multiplexer::Step> step = mux.tick((tick + 1) * kInterval);
        ASSERT_TRUE(step);
        ASSERT_NE(step->leave, step->join);
      }
      for (std::size_t e = 0; e < events; ++e) EXPECT_EQ(ticks_in[e], capacity * 3);
    }
  }
}

TEST(Multiplexer, TicksOnlyOnceAnIntervalHasPassed) {
  Multiplexer mux(3, 1, kInterval);
  EXPECT_FALSE(mux.tick(0));
  EXPECT_FALSE(mux.tick(kInterval - 1));
  EXPECT_TRUE(mux.holds_slots(0));
  ASSERT_TRUE(mux.tick(kInterval + 30));  // late: the next interval counts from here
  EXPECT_TRUE(mux.holds_slots(1));
  EXPECT_FALSE(mux.tick(2 * kInterval + 29));
  EXPECT_TRUE(mux.tick(2 * kInterval + 30));
  EXPECT_TRUE(mux.holds_slots(2));
}

// perf's times: enabled from the start, running only while in the window (up to now, the current
// window included), so running sums to capacity times the elapsed time.
TEST(Multiplexer, TimeRunningIsTimeInTheWindow) {
  Multiplexer mux(3, 1, kInterval);
  ASSERT_TRUE(mux.tick(100));     // 0 held 0..100
  ASSERT_TRUE(mux.tick(250));     // 1 held 100..250
  const std::uint64_t now = 280;  // 2 held since 250
  const std::vector<std::uint64_t> running{100, 150, 30};
  std::uint64_t total = 0;
  for (std::size_t e = 0; e < 3; ++e) {
    const Multiplexer::Times times = mux.times(e, now);
    EXPECT_EQ(times.enabled, now) << e;
    EXPECT_EQ(times.running, running[e]) << e;
    total += times.running;
  }
  EXPECT_EQ(total, now);
}

TEST(Multiplexer, EveryEventRunsAllTheTimeWhenNothingRotates) {
  Multiplexer mux(2, 2, kInterval);
  EXPECT_FALSE(mux.tick(500));
  EXPECT_EQ(mux.times(1, 500).running, 500u);
  EXPECT_EQ(mux.times(1, 500).enabled, 500u);
}

EventSpec pinned_on(TargetId owner, std::optional<VcpuId> vcpu) {
  EventSpec spec;
  spec.attr = BpAttr{.addr = 0x1000, .len = 4, .type = BpType::kWrite};
  spec.binding = vcpu ? Binding::target_on(owner, *vcpu) : Binding::target_all(owner);
  spec.pinned = true;
  return spec;
}

TEST(FlexibleBudget, WhatThePinnedEventsLeaveOnTheBusiestVcpu) {
  const SlotLayout host = SlotLayout::mixed(4);
  constexpr TargetId kOwner = 2;
  EXPECT_EQ(flexible_budget(host, 2, kOwner, 0, {}), 4u);
  const std::vector<EventSpec> one_everywhere{pinned_on(kOwner, std::nullopt)};
  EXPECT_EQ(flexible_budget(host, 2, kOwner, 0, one_everywhere), 3u);
  // Two on vCPU 1, one on vCPU 0: vCPU 1 is the busiest.
  const std::vector<EventSpec> uneven{pinned_on(kOwner, 1), pinned_on(kOwner, 1),
                                      pinned_on(kOwner, 0)};
  EXPECT_EQ(flexible_budget(host, 2, kOwner, 0, uneven), 2u);
  // More pinned events than slots: the ones that do not fit are refused, nothing is left.
  const std::vector<EventSpec> too_many(6, pinned_on(kOwner, std::nullopt));
  EXPECT_EQ(flexible_budget(host, 2, kOwner, 0, too_many), 0u);
  // Another target's pinned events take nothing from this owner (targets do not compete).
  const std::vector<EventSpec> other{pinned_on(kOwner + 1, std::nullopt)};
  EXPECT_EQ(flexible_budget(host, 2, kOwner, 0, other), 4u);
}

}  // namespace
}  // namespace drvm::bp
