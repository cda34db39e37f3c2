// The guest owns its four debug registers: its breakpoints have their own slots, are placed
// before any host event, and no host event (pinned or exclusive) can keep them off the slots.
#include <gtest/gtest.h>

#include "bpcore/manager.hpp"
#include "test_support.hpp"

namespace drvm::bp {
namespace {

using test::exec;
using test::must;
using test::spec;
using test::write;

constexpr std::uint64_t kAllFour = dr7::l(0) | dr7::l(1) | dr7::l(2) | dr7::l(3);

class GuestFirst : public ::testing::Test {
 protected:
  ManualClock clock;
  BreakpointManager m{ManagerConfig{2, SlotLayout::mixed(4)}, &clock};
  CpuMode mode;

  // The guest of vCPU `v` arms its four DRs as instruction breakpoints at 0x100..0x103.
  void guest_arms_all(VcpuId v = 0) {
    GuestDrFile& g = m.guest(v);
    for (unsigned i = 0; i < 4; ++i) ASSERT_FALSE(g.mov_to_dr(i, 0x100 + i, mode).arm_error);
    const DrAccessResult r = g.mov_to_dr(7, kAllFour, mode);
    ASSERT_EQ(r.action, DrAccessResult::Action::kOk);
    ASSERT_FALSE(r.arm_error.has_value());
  }
  void guest_disarms(VcpuId v = 0) { ASSERT_FALSE(m.guest(v).mov_to_dr(7, 0, mode).arm_error); }
  EventState state(EventId id) { return m.state(id).value(); }
};

TEST_F(GuestFirst, FourPinnedHostEventsAndFourGuestBreakpointsAreAllActive) {
  std::vector<EventId> host;
  for (std::uint64_t a = 0; a < 4; ++a) {
    host.push_back(must(m.create(spec(write(0x2000 + 8 * a), Binding::target_all(2)))));
  }
  m.schedule(0);  // the host's events sit on slots 0-3 first
  guest_arms_all();
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(std::popcount(eff.used_mask), 8);
  // The guest's breakpoints take DR0-DR3 (the hardware slots); the host's moved to 4-7.
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_EQ(eff.slot_event[i], *m.guest(0).event(i)) << i;
    EXPECT_EQ(eff.dr[i], 0x100u + i) << i;
    EXPECT_EQ(state(*m.guest(0).event(i)), EventState::kActive) << i;
  }
  for (EventId id : host) EXPECT_EQ(state(id), EventState::kActive);
  EXPECT_EQ(m.placed_state(host[3]).value(), EventState::kActive);
}

TEST_F(GuestFirst, ReservationAlwaysLeavesTheGuestItsFour) {
  for (std::uint64_t a = 0; a < 4; ++a) must(m.create(spec(exec(0x7000 + a), Binding::on_vcpu(0))));
  EXPECT_EQ(m.create(spec(exec(0x9000), Binding::on_vcpu(0))).error(), Error::kNoSpace);
  guest_arms_all();
  EXPECT_EQ(m.constraints().target_pinned(kGuestTarget, 0, 0), 4u);
  // The guest's slots are not the host's: a fifth guest event is refused, host rules unchanged.
  EXPECT_EQ(m.create(spec(exec(0x1), Binding::target_on(kGuestTarget, 0))).error(),
            Error::kNoSpace);
  EXPECT_EQ(m.constraints().max_pinned(Binding::on_vcpu(0), 0), 4u);  // the host's 4 only
  EXPECT_EQ(m.constraints().max_pinned(Binding::target_all(1), 0), 4u);
}

TEST_F(GuestFirst, FlexibleHostEventsDoNotUseTheGuestsIdleSlots) {
  std::vector<EventId> flexible;
  for (std::uint64_t a = 0; a < 6; ++a) {
    flexible.push_back(must(m.create(spec(exec(0x3000 + a), Binding::target_all(2), false))));
  }
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(std::popcount(eff.used_mask), 4);  // the host's 4, although 8 slots exist
  EXPECT_EQ(state(flexible[4]), EventState::kInactive);
  EXPECT_EQ(m.place_error(flexible[4]).value(), PlaceError::kNoSlot);
}

TEST_F(GuestFirst, ExclusiveHostEventYieldsToTheGuestAndComesBack) {
  EventSpec s = spec(write(0x2000), Binding::target_all(2));
  s.exclusive = true;
  const EventId excl = must(m.create(s));
  EXPECT_EQ(m.placed_state(excl).value(), EventState::kActive);
  clock.advance(10);
  guest_arms_all();
  m.schedule(0);
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_EQ(state(*m.guest(0).event(i)), EventState::kActive) << i;
  }
  EXPECT_EQ(state(excl), EventState::kError);
  EXPECT_EQ(m.place_error(excl).value(), PlaceError::kExclusive);
  clock.advance(30);
  const EventReading during = m.read(excl).value();
  EXPECT_EQ(during.errors, 1u);
  EXPECT_EQ(during.time_error, 30u);
  // The guest disarms: the host event is placed again without anyone re-enabling it.
  guest_disarms();
  m.schedule(1);
  EXPECT_EQ(m.placed_state(excl).value(), EventState::kActive);
  EXPECT_EQ(m.place_error(excl).value(), PlaceError::kNone);
  EXPECT_EQ(m.read(excl).value().place_error, PlaceError::kExclusive);  // what happened, kept
  EXPECT_EQ(m.schedule(0).slot_event[0], excl);
}

TEST_F(GuestFirst, ExclusiveFlexibleHostEventWaitsWhileTheGuestIsArmed) {
  EventSpec s = spec(write(0x2000), Binding::target_on(2, 0), false);
  s.exclusive = true;
  const EventId excl = must(m.create(s));
  guest_arms_all();
  m.schedule(0);
  EXPECT_EQ(state(excl), EventState::kInactive);
  EXPECT_EQ(m.place_error(excl).value(), PlaceError::kExclusive);
  guest_disarms();
  EXPECT_EQ(m.placed_state(excl).value(), EventState::kActive);
}

TEST_F(GuestFirst, AnExclusiveHostEventCannotBlockTheGuest) {
  // Placed before the guest armed, and pinned: still the one that yields.
  EventSpec s = spec(exec(0x5000), Binding::on_vcpu(0, 2));
  s.exclusive = true;
  const EventId excl = must(m.create(s));
  m.schedule(0);
  ASSERT_EQ(state(excl), EventState::kActive);
  guest_arms_all();
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.used_mask, 0xfu);
  EXPECT_EQ(state(excl), EventState::kError);
  EXPECT_EQ(m.guest(0).armed_mask(), 0xfu);
}

TEST_F(GuestFirst, HostTargetsThatOverfillTheirSlotsShowTheErrorState) {
  // Targets do not compete in the reservation rule, but both are armed at once: the later
  // target's pinned events cannot be placed and say so.
  std::vector<EventId> late;
  for (std::uint64_t a = 0; a < 4; ++a)
    must(m.create(spec(exec(0x1000 + a), Binding::target_all(1))));
  for (std::uint64_t a = 0; a < 2; ++a) {
    late.push_back(must(m.create(spec(exec(0x2000 + a), Binding::target_all(2)))));
  }
  guest_arms_all();
  EXPECT_EQ(m.placed_state(late[0]).value(), EventState::kError);
  EXPECT_EQ(m.place_error(late[0]).value(), PlaceError::kNoSlot);
  EXPECT_EQ(m.read(late[1]).value().errors, 1u);
  EXPECT_EQ(m.guest(0).armed_mask(), 0xfu);
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_EQ(state(*m.guest(0).event(i)), EventState::kActive) << i;
  }
}

TEST(GuestFirstLayout, HostSlotsPlusTheGuestsMustFitSixtyFour) {
  EXPECT_NO_THROW(BreakpointManager(ManagerConfig{1, SlotLayout::mixed(kMaxHostSlots)}));
  EXPECT_THROW(BreakpointManager(ManagerConfig{1, SlotLayout::mixed(kMaxHostSlots + 1)}),
               std::invalid_argument);
  BreakpointManager m(ManagerConfig{1, SlotLayout::mixed(4)});
  EXPECT_EQ(m.layout().total_slots(), 8u);
  EXPECT_EQ(m.host_layout().total_slots(), 4u);
}

}  // namespace
}  // namespace drvm::bp
