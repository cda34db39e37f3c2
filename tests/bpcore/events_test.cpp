// Events: creation errors, states, counting, overflow, read(), enable/disable/modify, exclusive.
#include <gtest/gtest.h>

#include "bpcore/manager.hpp"
#include "test_support.hpp"

namespace drvm::bp {
namespace {

using test::exec;
using test::must;
using test::spec;
using test::write;

class Events : public ::testing::Test {
 protected:
  ManualClock clock;
  BreakpointManager m{ManagerConfig{2, SlotLayout::mixed(4)}, &clock};

  EventState state(EventId id) { return m.state(id).value(); }
  std::uint64_t hit_slot(VcpuId v, unsigned slot) {
    DispatchResult out;
    m.dispatch(v, DbHit{std::uint64_t{1} << slot, 0}, out);
    return out.fired_count;
  }
};

TEST_F(Events, CreateRejectsBadInputWithoutReserving) {
  EXPECT_EQ(m.create(spec({0x1001, 2, BpType::kWrite}, Binding::target_all(1))).error(),
            Error::kMisaligned);
  EXPECT_EQ(m.create(spec({0x1000, 3, BpType::kWrite}, Binding::target_all(1))).error(),
            Error::kBadLength);
  EXPECT_EQ(m.create(spec({0x1000, 4, BpType::kExecute}, Binding::target_all(1))).error(),
            Error::kExecuteLength);
  EXPECT_EQ(m.create(spec({0x8000'0000'0000, 1, BpType::kExecute}, Binding::target_all(1))).error(),
            Error::kNonCanonical);
  EXPECT_EQ(m.create(spec({0x1000, 1, BpType{6}}, Binding::target_all(1))).error(),
            Error::kUnknownType);
  EXPECT_EQ(m.create(spec(exec(0x1000), Binding::on_vcpu(2))).error(), Error::kBadVcpu);
  EXPECT_EQ(m.create(spec(exec(0x1000), Binding::on_vcpu(kAllVcpus))).error(), Error::kBadVcpu);
  EventSpec heavy = spec(exec(0x1000), Binding::target_all(1));
  heavy.weight = 5;
  EXPECT_EQ(m.create(heavy).error(), Error::kBadWeight);
  heavy.weight = 0;
  EXPECT_EQ(m.create(heavy).error(), Error::kBadWeight);
  EXPECT_EQ(m.constraints().max_pinned(Binding::on_vcpu(0), 0), 0u);
}

TEST_F(Events, NoSpaceLeavesEverythingAsItWas) {
  for (int i = 0; i < 4; ++i) must(m.create(spec(exec(0x1000 + i), Binding::on_vcpu(0))));
  const auto before = m.constraints().max_pinned(Binding::target_all(9), 0);
  EXPECT_EQ(m.create(spec(exec(0x2000), Binding::target_all(1))).error(), Error::kNoSpace);
  EXPECT_EQ(m.create(spec(exec(0x2000), Binding::on_vcpu(0))).error(), Error::kNoSpace);
  EXPECT_EQ(m.constraints().max_pinned(Binding::target_all(9), 0), before);
  // A flexible event reserves nothing, so it is accepted.
  EXPECT_TRUE(m.create(spec(exec(0x2000), Binding::on_vcpu(0), false)).ok());
}

TEST_F(Events, DestroyReleasesAndInvalidatesTheId) {
  std::vector<EventId> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(must(m.create(spec(exec(0x10 + i), Binding::target_on(1, 0)))));
  EXPECT_EQ(m.create(spec(exec(0x20), Binding::target_on(1, 0))).error(), Error::kNoSpace);
  ASSERT_TRUE(m.destroy(ids[1]).ok());
  EXPECT_EQ(m.destroy(ids[1]).error(), Error::kUnknownEvent);
  EXPECT_EQ(m.enable(ids[1]).error(), Error::kUnknownEvent);
  EXPECT_EQ(m.disable(ids[1]).error(), Error::kUnknownEvent);
  EXPECT_EQ(m.modify(ids[1], exec(0)).error(), Error::kUnknownEvent);
  EXPECT_EQ(m.read(ids[1]).error(), Error::kUnknownEvent);
  EXPECT_EQ(m.state(ids[1]).error(), Error::kUnknownEvent);
  EXPECT_EQ(m.spec(ids[1]), nullptr);
  const EventId reused = must(m.create(spec(exec(0x20), Binding::target_on(1, 0))));
  EXPECT_EQ(reused.index, ids[1].index);  // storage reused, id still distinct
  EXPECT_NE(reused, ids[1]);
  EXPECT_EQ(m.destroy(EventId{}).error(), Error::kUnknownEvent);
}

TEST_F(Events, StatesFollowEnableDisableAndSchedule) {
  EventSpec s = spec(exec(0x1000), Binding::target_on(1, 0));
  s.disabled = true;
  const EventId id = must(m.create(s));
  EXPECT_EQ(state(id), EventState::kOff);
  m.schedule(0);
  EXPECT_EQ(m.effective(0).used_mask, 0u);
  ASSERT_TRUE(m.enable(id).ok());
  EXPECT_EQ(state(id), EventState::kInactive);
  m.schedule(0);
  EXPECT_EQ(state(id), EventState::kActive);
  ASSERT_TRUE(m.disable(id).ok());
  EXPECT_EQ(state(id), EventState::kOff);
  m.schedule(0);
  EXPECT_EQ(m.effective(0).used_mask, 0u);
  EXPECT_EQ(state(id), EventState::kOff);
}

TEST_F(Events, CountsAndOverflowEveryPeriod) {
  struct Calls {
    int n = 0;
    std::uint64_t last_count = 0;
  } calls;
  EventSpec s = spec(write(0x2000), Binding::target_all(1));
  s.sample_period = 3;
  s.on_overflow.context = &calls;
  s.on_overflow.fn = [](void* ctx, const Overflow& o) {
    auto* c = static_cast<Calls*>(ctx);
    ++c->n;
    c->last_count = o.count;
    return c->n == 2 ? HitAction::kStop : HitAction::kContinue;
  };
  const EventId id = must(m.create(s));
  m.schedule(1);
  DispatchResult out;
  int stops = 0;
  for (int i = 1; i <= 7; ++i) {
    m.dispatch(1, DbHit{1, 0}, out);
    ASSERT_EQ(out.fired_count, 1u);
    EXPECT_EQ(out.fired[0].event, id);
    EXPECT_EQ(out.fired[0].owner, 1u);
    EXPECT_EQ(out.fired[0].overflow, i % 3 == 0) << i;
    stops += out.stop;
  }
  EXPECT_EQ(calls.n, 2);
  EXPECT_EQ(calls.last_count, 6u);
  EXPECT_EQ(stops, 1);
  EXPECT_EQ(m.read(id).value().value, 7u);
}

TEST_F(Events, OverflowWithoutHandlerAsksToStop) {
  EventSpec s = spec(exec(0x3000), Binding::target_on(4, 0));
  s.sample_period = 1;
  must(m.create(s));
  m.schedule(0);
  DispatchResult out;
  m.dispatch(0, DbHit{1, 0}, out);
  EXPECT_TRUE(out.stop);
  EXPECT_EQ(out.fired[0].action, HitAction::kStop);
  EventSpec counting = spec(exec(0x3001), Binding::target_on(4, 0));
  must(m.create(counting));
  m.schedule(0);
  m.dispatch(0, DbHit{2, 0}, out);
  EXPECT_FALSE(out.stop);
  EXPECT_FALSE(out.fired[0].overflow);
}

TEST_F(Events, TimeEnabledAndRunning) {
  EventSpec s = spec(exec(0x1000), Binding::target_on(1, 0));
  s.disabled = true;
  const EventId id = must(m.create(s));
  clock.advance(100);  // off: no time
  ASSERT_TRUE(m.enable(id).ok());
  clock.advance(10);  // enabled, not scheduled yet
  m.schedule(0);
  clock.advance(50);  // running
  EventReading r = m.read(id).value();
  EXPECT_EQ(r.time_enabled, 60u);
  EXPECT_EQ(r.time_running, 50u);
  ASSERT_TRUE(m.disable(id).ok());
  clock.advance(1000);
  r = m.read(id).value();
  EXPECT_EQ(r.time_enabled, 60u);
  EXPECT_EQ(r.time_running, 50u);
}

TEST_F(Events, ModifyKeepsTheSlot) {
  const EventId a = must(m.create(spec(exec(0x1000), Binding::target_on(1, 0))));
  const EventId b = must(m.create(spec(exec(0x2000), Binding::target_on(1, 0))));
  m.schedule(0);
  ASSERT_EQ(m.effective(0).slot_event[1], b);
  ASSERT_TRUE(m.destroy(a).ok());
  ASSERT_TRUE(m.modify(b, write(0x4000, 8)).ok());
  EXPECT_TRUE(m.needs_schedule(0));
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.slot_event[1], b);  // not moved to the now free slot 0
  EXPECT_EQ(eff.dr[1], 0x4000u);
  EXPECT_EQ(eff.dr7, encode_dr7_slot(1, write(0x4000, 8)) | dr7::kGe);
  EXPECT_EQ(m.spec(b)->attr, write(0x4000, 8));
  EXPECT_EQ(m.modify(b, write(0x4001, 8)).error(), Error::kMisaligned);
  EXPECT_EQ(m.spec(b)->attr, write(0x4000, 8));
}

TEST(EventsSeparatePools, ModifyAcrossPoolsRollsBackOnNoSpace) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::separate(1, 1)}, &clock);
  const EventId x = must(m.create(spec(exec(0x1000), Binding::target_all(1))));
  const EventId w = must(m.create(spec(write(0x2000), Binding::target_all(1))));
  EXPECT_EQ(m.modify(w, exec(0x3000)).error(), Error::kNoSpace);
  EXPECT_EQ(m.spec(w)->attr, write(0x2000));
  // The data pool starts after the instruction pool's host slot and the guest's 4.
  EXPECT_EQ(m.schedule(0).slot_event[5], w);  // still in its data slot
  ASSERT_TRUE(m.destroy(x).ok());
  ASSERT_TRUE(m.modify(w, exec(0x3000)).ok());
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.slot_event[0], w);
  EXPECT_FALSE(eff.slot_event[5].valid());
  EXPECT_EQ(m.create(spec(exec(0x5000), Binding::target_all(1))).error(), Error::kNoSpace);
  EXPECT_TRUE(m.create(spec(write(0x5000), Binding::target_all(1))).ok());
}

TEST_F(Events, ExclusiveKeepsOtherOwnersOff) {
  // Owner 1 holds slot 0; an exclusive flexible event of owner 2 must wait.
  const EventId a = must(m.create(spec(exec(0x1000), Binding::target_on(1, 0))));
  EventSpec ex = spec(exec(0x2000), Binding::target_on(2, 0), false);
  ex.exclusive = true;
  const EventId e = must(m.create(ex));
  m.schedule(0);
  EXPECT_EQ(state(a), EventState::kActive);
  EXPECT_EQ(state(e), EventState::kInactive);
  // Once owner 1 is gone it goes on, and then keeps owner 1's flexible events off...
  ASSERT_TRUE(m.disable(a).ok());
  m.schedule(0);
  EXPECT_EQ(state(e), EventState::kActive);
  const EventId f = must(m.create(spec(exec(0x3000), Binding::target_on(1, 0), false)));
  // ...but not its own owner's events.
  const EventId own = must(m.create(spec(exec(0x4000), Binding::target_on(2, 0), false)));
  m.schedule(0);
  EXPECT_EQ(state(f), EventState::kInactive);
  EXPECT_EQ(state(own), EventState::kActive);
  // A pinned event of another owner that cannot go on because of it is an error.
  ASSERT_TRUE(m.enable(a).ok());
  m.schedule(0);
  EXPECT_EQ(state(a), EventState::kActive);    // pinned goes first...
  EXPECT_EQ(state(e), EventState::kInactive);  // ...and the exclusive flexible one waits
  EventSpec pinned_ex = spec(exec(0x5000), Binding::target_on(3, 0));
  pinned_ex.exclusive = true;
  const EventId pe = must(m.create(pinned_ex));
  m.schedule(0);
  EXPECT_EQ(state(pe), EventState::kError);
}

TEST_F(Events, ErrorStateIsLeftByEnable) {
  for (int i = 0; i < 4; ++i) must(m.create(spec(exec(0x10 + i), Binding::target_on(1, 0))));
  // Another target may reserve 4 too (targets do not compete), but the slots are taken.
  const EventId late = must(m.create(spec(exec(0x20), Binding::target_on(2, 0))));
  m.schedule(0);
  EXPECT_EQ(state(late), EventState::kError);
  clock.advance(10);
  EXPECT_EQ(m.read(late).value().time_enabled, 0u);  // no time in kError
  ASSERT_TRUE(m.enable(late).ok());
  EXPECT_EQ(state(late), EventState::kInactive);
  m.schedule(0);
  EXPECT_EQ(state(late), EventState::kError);
}

}  // namespace
}  // namespace drvm::bp
