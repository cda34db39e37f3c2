// Rotation of flexible events as an owner drives it (the counting session): the manager's window
// of events on the slots, sliding by one per tick on every vCPU alike, the times it keeps on the
// owner's clock, and the budget pinned events leave.
#include "bpcore/rotation.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "bpcore/manager.hpp"
#include "test_support.hpp"

namespace drvm::bp {
namespace {

constexpr std::uint64_t kInterval = 100;

// An owner multiplexing `events` flexible events bound to every vCPU, as the counting session
// does: each tick of its clock turns every vCPU's ring once.
struct Multiplexing {
  Multiplexing(std::size_t events, std::uint32_t slots, std::uint32_t vcpus)
      : manager(ManagerConfig{vcpus, SlotLayout::mixed(slots)}, &clock) {
    for (std::size_t i = 0; i < events; ++i) {
      ids.push_back(test::must(manager.create(
          test::spec(test::write(0x1000 + 8 * i), Binding::target_all(kOwner), false))));
    }
    for (VcpuId v = 0; v < vcpus; ++v) manager.schedule(v);
  }
  // Turns every vCPU's ring; whether anything rotated.
  bool tick() {
    clock.advance(kInterval);
    bool turned = false;
    for (VcpuId v = 0; v < manager.vcpus(); ++v) turned |= manager.rotate(v);
    return turned;
  }
  bool on(std::size_t event, VcpuId vcpu) const {
    const EffectiveSet& set = manager.effective(vcpu);
    for (unsigned s = 0; s < kMaxSlots; ++s) {
      if ((set.used_mask >> s & 1) && set.slot_event[s] == ids[event]) return true;
    }
    return false;
  }
  static constexpr TargetId kOwner = 2;
  ManualClock clock;
  BreakpointManager manager;
  std::vector<EventId> ids;
};

TEST(Rotation, NothingRotatesWhenEverythingFits) {
  Multiplexing fits(4, 4, 1);
  EXPECT_FALSE(fits.tick());
  for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(fits.on(i, 0));
  EXPECT_EQ(fits.manager.read(fits.ids[3]).value().time_running, kInterval);
}

// The window of `slots` events slides by one event per tick on every vCPU alike, so each event
// holds the slots for `slots` of every `events` ticks, on all vCPUs at once.
TEST(Rotation, EveryEventGetsItsShareOnEveryVcpuAtOnce) {
  for (std::size_t events = 2; events <= 9; ++events) {
    for (std::uint32_t slots = 1; slots < events && slots <= 4; ++slots) {
      Multiplexing mux(events, slots, 2);
      std::vector<std::size_t> ticks_on(events, 0);
      for (std::size_t tick = 0; tick < events * 3; ++tick) {
        std::size_t holding = 0;
        for (std::size_t e = 0; e < events; ++e) {
          ASSERT_EQ(mux.on(e, 0), mux.on(e, 1)) << events << " " << slots << " " << e;
          if (mux.on(e, 0)) {
            ++ticks_on[e];
            ++holding;
          }
        }
        ASSERT_EQ(holding, slots);
        ASSERT_TRUE(mux.tick());
      }
      for (std::size_t e = 0; e < events; ++e) EXPECT_EQ(ticks_on[e], slots * 3) << e;
    }
  }
}

// perf's times on the owner's clock: enabled from the start, running only while on the slots (the
// current window included), so running sums to the slots times the elapsed time.
TEST(Rotation, TimeRunningIsTimeOnTheSlots) {
  Multiplexing mux(3, 1, 1);
  ASSERT_TRUE(mux.tick());  // 0 held 0..100
  ASSERT_TRUE(mux.tick());  // 1 held 100..200
  mux.clock.advance(30);    // 2 held since 200
  const std::vector<std::uint64_t> running{100, 100, 30};
  std::uint64_t total = 0;
  for (std::size_t e = 0; e < 3; ++e) {
    const EventReading reading = mux.manager.read(mux.ids[e]).value();
    EXPECT_EQ(reading.time_enabled, 230u) << e;
    EXPECT_EQ(reading.time_running, running[e]) << e;
    total += reading.time_running;
  }
  EXPECT_EQ(total, 230u);
}

// An owner brings its own clock (the session's vCPU time): the times so far stay, and only the
// new clock's progress counts from the switch on.
TEST(Rotation, SwitchingTheClockKeepsTheTimesSoFar) {
  Multiplexing mux(2, 4, 1);
  mux.clock.advance(50);
  ManualClock vcpu_time;
  vcpu_time.set(1000);
  mux.manager.set_clock(&vcpu_time);
  mux.clock.advance(500);  // no longer the manager's clock
  vcpu_time.advance(20);
  EXPECT_EQ(mux.manager.read(mux.ids[0]).value().time_enabled, 70u);
  EXPECT_EQ(mux.manager.read(mux.ids[0]).value().time_running, 70u);
  mux.manager.set_clock(nullptr);  // a steady clock again: the reading goes on from 70
  EXPECT_GE(mux.manager.read(mux.ids[1]).value().time_enabled, 70u);
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
