// #DB dispatch: slot hits, engine-reported hits, guest DR6 with the guest's own slot numbers.
#include <gtest/gtest.h>

#include "bpcore/manager.hpp"
#include "test_support.hpp"

namespace drvm::bp {
namespace {

using test::exec;
using test::must;
using test::spec;
using test::write;

class Dispatch : public ::testing::Test {
 protected:
  ManualClock clock;
  BreakpointManager m{ManagerConfig{2, SlotLayout::mixed(8)}, &clock};
  CpuMode mode;
  DispatchResult out;

  void guest_write(unsigned reg, std::uint64_t v) {
    ASSERT_EQ(m.guest(0).mov_to_dr(reg, v, mode).action, DrAccessResult::Action::kOk);
  }
};

TEST_F(Dispatch, HostEventFromPhysicalDr6) {
  const EventId a = must(m.create(spec(exec(0x1000), Binding::target_all(5))));
  const EventId b = must(m.create(spec(exec(0x2000), Binding::target_all(6))));
  m.schedule(0);
  m.dispatch(0, DbHit{slot_mask_from_dr6(0xffff0ff2), 0}, out);
  ASSERT_EQ(out.fired_count, 1u);
  EXPECT_EQ(out.fired[0].event, b);
  EXPECT_EQ(out.fired[0].owner, 6u);
  EXPECT_FALSE(out.deliver_to_guest);
  EXPECT_FALSE(out.stop);
  m.dispatch(0, DbHit{0b11, 0}, out);
  EXPECT_EQ(out.fired_count, 2u);
  EXPECT_EQ(m.read(a).value().value, 1u);
  EXPECT_EQ(m.read(b).value().value, 2u);
}

TEST_F(Dispatch, FreeSlotsAndStaleEventsAreIgnored) {
  const EventId a = must(m.create(spec(exec(0x1000), Binding::target_on(1, 0))));
  m.schedule(0);
  m.dispatch(0, DbHit{0b1110, 0}, out);  // nothing on slots 1-3
  EXPECT_EQ(out.fired_count, 0u);
  ASSERT_TRUE(m.disable(a).ok());  // still in the effective set until the next schedule
  m.dispatch(0, DbHit{1, 0}, out);
  EXPECT_EQ(out.fired_count, 0u);
  ASSERT_TRUE(m.destroy(a).ok());
  m.dispatch(0, DbHit{1, 0}, out);
  EXPECT_EQ(out.fired_count, 0u);
}

TEST_F(Dispatch, GuestSeesItsOwnSlotNumbers) {
  // A host event takes effective slot 0, so guest DR2 lands on another effective slot.
  must(m.create(spec(exec(0x9000), Binding::on_vcpu(0))));
  guest_write(2, 0x4000);
  guest_write(7, dr7::l(2) | (0b1101ull << 24));
  const EffectiveSet& eff = m.schedule(0);
  const EventId guest_event = *m.guest(0).event(2);
  unsigned slot = 0;
  while (eff.slot_event[slot] != guest_event) ++slot;
  EXPECT_NE(slot, 2u);
  m.dispatch(0, DbHit{std::uint64_t{1} << slot, 0}, out);
  EXPECT_EQ(out.fired_count, 0u);  // guest events are not host events
  EXPECT_TRUE(out.deliver_to_guest);
  EXPECT_EQ(out.guest_dr6, 0xffff0ff0u | dr6::b(2));
  EXPECT_EQ(m.guest(0).read(6), out.guest_dr6);
}

TEST_F(Dispatch, HostAndGuestHitTogether) {
  const EventId host = must(m.create(spec(write(0x4000), Binding::target_all(1))));
  guest_write(0, 0x4000);
  guest_write(7, dr7::l(0) | (0b1101ull << 16));
  m.schedule(0);
  m.report_access(0, 0x4002, 2, Access::kWrite, out);
  ASSERT_EQ(out.fired_count, 1u);
  EXPECT_EQ(out.fired[0].event, host);
  EXPECT_TRUE(out.deliver_to_guest);
  EXPECT_EQ(out.guest_dr6 & dr6::kTrapBits, 1u);
}

TEST_F(Dispatch, BsAndBdPassThroughToTheGuest) {
  guest_write(6, dr6::b(1));
  m.schedule(0);
  m.dispatch(0, DbHit{0, dr6::kBs}, out);
  EXPECT_TRUE(out.deliver_to_guest);
  EXPECT_EQ(out.guest_dr6, 0xffff0ff0u | dr6::kBs);  // stale B1 cleared, BS set
  m.dispatch(0, DbHit{0, dr6::kBd}, out);
  EXPECT_EQ(out.guest_dr6, 0xffff0ff0u | dr6::kBs | dr6::kBd);  // BS stays, as on hardware
  m.dispatch(0, DbHit{0, 0}, out);
  EXPECT_FALSE(out.deliver_to_guest);
}

TEST_F(Dispatch, DeliveryClearsGuestGd) {
  guest_write(0, 0x10);
  guest_write(7, dr7::kGd | dr7::l(0));
  m.schedule(0);
  m.report_access(0, 0x10, 1, Access::kExecute, out);
  EXPECT_TRUE(out.deliver_to_guest);
  EXPECT_EQ(m.guest(0).read(7) & dr7::kGd, 0u);
}

TEST_F(Dispatch, SlotsMatchingPicksTheCandidatesAnAccessTriggers) {
  must(m.create(spec({0x2000, 8, BpType::kReadWrite}, Binding::target_all(1))));
  must(m.create(spec({0x2004, 4, BpType::kRead}, Binding::target_all(2))));
  must(m.create(spec({0x2006, 2, BpType::kWrite}, Binding::target_all(3))));
  must(m.create(spec(exec(0x2000), Binding::target_all(4))));
  const EffectiveSet& eff = m.schedule(0);
  const auto slot_of = [&](std::uint64_t addr, BpType type) {
    for (unsigned s = 0; s < kMaxSlots; ++s) {
      if ((eff.used_mask >> s & 1) && eff.slot_attr[s].addr == addr &&
          eff.slot_attr[s].type == type)
        return std::uint64_t{1} << s;
    }
    return std::uint64_t{0};
  };
  const std::uint64_t rw = slot_of(0x2000, BpType::kReadWrite), ro = slot_of(0x2004, BpType::kRead),
                      wo = slot_of(0x2006, BpType::kWrite), x = slot_of(0x2000, BpType::kExecute);
  ASSERT_TRUE(rw && ro && wo && x);
  EXPECT_EQ(eff.slots_matching(eff.used_mask, 0x2004, 4, Access::kWrite), rw | wo);
  EXPECT_EQ(eff.slots_matching(eff.used_mask, 0x2003, 2, Access::kRead), rw | ro);
  EXPECT_EQ(eff.slots_matching(eff.used_mask, 0x2000, 1, Access::kExecute), x);
  EXPECT_EQ(eff.slots_matching(eff.used_mask, 0x2008, 8, Access::kWrite), 0u);
  // Only the candidates are looked at (an engine passes the slots it serves).
  EXPECT_EQ(eff.slots_matching(wo, 0x2004, 4, Access::kWrite), wo);
  EXPECT_EQ(eff.slots_matching(~eff.used_mask, 0x2004, 4, Access::kWrite), 0u);
}

TEST_F(Dispatch, ReportAccessMatchesEveryArmedEvent) {
  const EventId rw = must(m.create(spec({0x2000, 8, BpType::kReadWrite}, Binding::target_all(1))));
  const EventId ro = must(m.create(spec({0x2004, 4, BpType::kRead}, Binding::target_all(2))));
  const EventId wo = must(m.create(spec({0x2006, 2, BpType::kWrite}, Binding::target_all(3))));
  const EventId x = must(m.create(spec(exec(0x2000), Binding::target_all(4))));
  m.schedule(0);
  m.report_access(0, 0x2004, 4, Access::kWrite, out);  // read-only one filtered out
  ASSERT_EQ(out.fired_count, 2u);
  EXPECT_EQ(out.fired[0].event, rw);
  EXPECT_EQ(out.fired[1].event, wo);
  m.report_access(0, 0x2003, 2, Access::kRead, out);
  ASSERT_EQ(out.fired_count, 2u);
  EXPECT_EQ(out.fired[0].event, rw);
  EXPECT_EQ(out.fired[1].event, ro);
  m.report_access(0, 0x2000, 1, Access::kExecute, out);
  ASSERT_EQ(out.fired_count, 1u);
  EXPECT_EQ(out.fired[0].event, x);
  m.report_access(0, 0x2008, 8, Access::kWrite, out);
  EXPECT_EQ(out.fired_count, 0u);
}

TEST_F(Dispatch, StopIsTheOrOfTheOverflows) {
  EventSpec stopper = spec(exec(0x1), Binding::target_all(1));
  stopper.sample_period = 2;
  stopper.on_overflow.fn = [](void*, const Overflow&) { return HitAction::kStop; };
  EventSpec quiet = spec(exec(0x2), Binding::target_all(2));
  quiet.sample_period = 1;
  quiet.on_overflow.fn = [](void*, const Overflow&) { return HitAction::kContinue; };
  must(m.create(stopper));
  must(m.create(quiet));
  m.schedule(0);
  m.dispatch(0, DbHit{0b11, 0}, out);
  EXPECT_FALSE(out.stop);
  EXPECT_TRUE(out.fired[1].overflow);
  m.dispatch(0, DbHit{0b11, 0}, out);
  EXPECT_TRUE(out.stop);
  EXPECT_EQ(out.fired[0].action, HitAction::kStop);
  EXPECT_EQ(out.fired[1].action, HitAction::kContinue);
}

TEST_F(Dispatch, OverflowHandlerGetsVcpuAndEvent) {
  struct Seen {
    EventId event;
    VcpuId vcpu = 99;
  } seen;
  EventSpec s = spec(exec(0x1), Binding::target_all(1));
  s.sample_period = 1;
  s.on_overflow.context = &seen;
  s.on_overflow.fn = [](void* ctx, const Overflow& o) {
    static_cast<Seen*>(ctx)->event = o.event;
    static_cast<Seen*>(ctx)->vcpu = o.vcpu;
    return HitAction::kContinue;
  };
  const EventId id = must(m.create(s));
  m.schedule(1);
  m.dispatch(1, DbHit{1, 0}, out);
  EXPECT_EQ(seen.event, id);
  EXPECT_EQ(seen.vcpu, 1u);
}

}  // namespace
}  // namespace drvm::bp
