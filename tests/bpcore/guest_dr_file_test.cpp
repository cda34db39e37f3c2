// The guest's virtual DR file: MOV DR semantics and translation into guest-owned events.
#include <gtest/gtest.h>

#include "bpcore/manager.hpp"
#include "test_support.hpp"

namespace drvm::bp {
namespace {

using Action = DrAccessResult::Action;
using test::exec;
using test::must;
using test::spec;

class GuestDr : public ::testing::Test {
 protected:
  ManualClock clock;
  BreakpointManager m{ManagerConfig{2, SlotLayout::mixed(4)}, &clock};
  GuestDrFile& g = m.guest(0);
  CpuMode mode;

  void write(unsigned reg, std::uint64_t v) {
    const DrAccessResult r = g.mov_to_dr(reg, v, mode);
    ASSERT_EQ(r.action, Action::kOk) << "DR" << reg;
    ASSERT_FALSE(r.arm_error.has_value());
  }
  std::uint64_t read(unsigned reg) {
    const DrAccessResult r = g.mov_from_dr(reg, mode);
    EXPECT_EQ(r.action, Action::kOk) << "DR" << reg;
    return r.value;
  }
};

TEST_F(GuestDr, ResetValues) {
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(read(i), 0u);
  EXPECT_EQ(read(6), 0xffff0ff0u);
  EXPECT_EQ(read(7), 0x400u);
  EXPECT_EQ(g.armed_mask(), 0u);
  EXPECT_FALSE(g.event(0).has_value());
}

// SDM 17.2.3: with RTM (bus-lock detection) DR6 bit 16 (bit 11) is writable and active low; a #DB
// sets it again. Without the feature it reads as 1 whatever is written.
TEST_F(GuestDr, Dr6ActiveLowBitsFollowTheCpuFeatures) {
  write(6, 0);
  EXPECT_EQ(read(6), 0xffff0ff0u);
  g.set_cpu_features(true, false);
  write(6, 0);
  EXPECT_EQ(read(6), 0xfffe0ff0u);
  g.set_cpu_features(true, true);
  write(6, 0);
  EXPECT_EQ(read(6), 0xfffe07f0u);
  EXPECT_EQ(g.deliver_db(dr6::kBs), 0xffff4ff0u);
  g.set_cpu_features(false, false);
  write(6, 0);
  EXPECT_EQ(read(6), 0xffff0ff0u);
}

TEST_F(GuestDr, AddressRegistersHoldAnyValue) {
  write(0, 0x1234'5678'9abc'def1);
  write(1, 0xffff'ffff'ffff'ffff);
  write(2, 0x0000'8000'0000'0000);  // non-canonical: stored, never armed
  write(3, 7);
  EXPECT_EQ(read(0), 0x1234'5678'9abc'def1u);
  EXPECT_EQ(read(1), 0xffff'ffff'ffff'ffffu);
  EXPECT_EQ(read(2), 0x0000'8000'0000'0000u);
  EXPECT_EQ(read(3), 7u);
}

TEST_F(GuestDr, Dr6ReadsFixedBitsAndKeepsWritableOnes) {
  write(6, 0);
  EXPECT_EQ(read(6), 0xffff0ff0u);
  write(6, 0xffff'ffff);
  EXPECT_EQ(read(6), 0xffffefffu);  // bit 12 reads 0
  write(6, dr6::kBs | dr6::b(1));
  EXPECT_EQ(read(6), 0xffff4ff2u);
}

TEST_F(GuestDr, Dr7ReadsBit10AndDropsReservedBits) {
  write(7, 0);
  EXPECT_EQ(read(7), 0x400u);
  write(7, 0xffff'ffff & ~std::uint64_t{0xff} & ~dr7::kGd);  // R/W and LEN fields, nothing enabled
  EXPECT_EQ(read(7), 0xffff0700u);
  EXPECT_EQ(g.armed_mask(), 0u);
  write(7, 0xd800);  // bits 11, 12, 14 and 15
  EXPECT_EQ(read(7), 0x400u);
}

TEST_F(GuestDr, UpperHalfOfDr6AndDr7IsGp) {
  write(6, dr6::b(0));
  write(7, 0x1);
  EXPECT_EQ(g.mov_to_dr(6, std::uint64_t{1} << 32, mode).action, Action::kInjectGp);
  EXPECT_EQ(g.mov_to_dr(7, std::uint64_t{1} << 63, mode).action, Action::kInjectGp);
  EXPECT_EQ(g.mov_to_dr(5, std::uint64_t{1} << 40, mode).action, Action::kInjectGp);
  EXPECT_EQ(read(6), 0xffff0ff1u);  // unchanged
  EXPECT_EQ(read(7), 0x401u);
  // Outside 64-bit mode the operand is 32 bits: no #GP, upper half ignored.
  CpuMode legacy;
  legacy.long_mode = false;
  EXPECT_EQ(g.mov_to_dr(7, 0xffff'ffff'0000'0000, legacy).action, Action::kOk);
  EXPECT_EQ(read(7), 0x400u);
  EXPECT_EQ(g.mov_to_dr(0, 0x1'2345'6789, legacy).action, Action::kOk);
  EXPECT_EQ(read(0), 0x2345'6789u);
}

TEST_F(GuestDr, Dr4Dr5AliasWhenDeIsClearUdWhenSet) {
  write(4, dr6::kBt);
  EXPECT_EQ(read(6), 0xffff8ff0u);
  write(5, 0x3);
  EXPECT_EQ(read(7), 0x403u);
  EXPECT_EQ(read(4), read(6));
  EXPECT_EQ(read(5), read(7));
  mode.cr4_de = true;
  for (unsigned reg : {4u, 5u}) {
    EXPECT_EQ(g.mov_from_dr(reg, mode).action, Action::kInjectUd);
    EXPECT_EQ(g.mov_to_dr(reg, 0, mode).action, Action::kInjectUd);
  }
  EXPECT_EQ(read(7), 0x403u);
}

TEST_F(GuestDr, Dr8AndUpAreUd) {
  for (unsigned reg = 8; reg < 16; ++reg) {
    EXPECT_EQ(g.mov_from_dr(reg, mode).action, Action::kInjectUd);
    EXPECT_EQ(g.mov_to_dr(reg, 0, mode).action, Action::kInjectUd);
  }
}

TEST_F(GuestDr, CplAboveZeroIsGp) {
  mode.cpl = 3;
  EXPECT_EQ(g.mov_from_dr(0, mode).action, Action::kInjectGp);
  EXPECT_EQ(g.mov_to_dr(7, 1, mode).action, Action::kInjectGp);
  mode.cpl = 0;
  EXPECT_EQ(read(7), 0x400u);
}

TEST_F(GuestDr, GeneralDetectFaultsEveryAccessOnce) {
  write(6, dr6::b(2) | dr6::kBs);
  write(7, dr7::kGd | 0x1);
  const DrAccessResult r = g.mov_from_dr(0, mode);
  EXPECT_EQ(r.action, Action::kInjectDb);
  // B0-B3 cleared, BD set, BS kept; GD cleared so the handler can use the registers.
  EXPECT_EQ(r.dr6, 0xffff0ff0u | dr6::kBd | dr6::kBs);
  EXPECT_EQ(read(6), r.dr6);
  EXPECT_EQ(read(7), 0x401u);
  write(7, dr7::kGd);
  const DrAccessResult w = g.mov_to_dr(1, 0x5000, mode);
  EXPECT_EQ(w.action, Action::kInjectDb);
  EXPECT_EQ(read(1), 0u);  // the faulting write did not happen
  // #UD (DR4 with CR4.DE) has priority over general detect.
  write(7, dr7::kGd);
  mode.cr4_de = true;
  EXPECT_EQ(g.mov_from_dr(4, mode).action, Action::kInjectUd);
  EXPECT_EQ(g.mov_from_dr(7, mode).action, Action::kInjectDb);
}

TEST_F(GuestDr, AddressWriteCreatesAnInactiveEvent) {
  write(0, 0x1000);
  ASSERT_TRUE(g.event(0).has_value());
  const EventId e = *g.event(0);
  EXPECT_EQ(m.state(e).value(), EventState::kOff);
  EXPECT_EQ(m.spec(e)->binding, Binding::target_on(kGuestTarget, 0));
  EXPECT_TRUE(m.spec(e)->pinned);
  EXPECT_EQ(m.constraints().target_pinned(kGuestTarget, 0, 0), 1u);  // slot reserved
  write(0, 0x2000);
  EXPECT_EQ(*g.event(0), e);  // updated, not recreated
  EXPECT_EQ(m.spec(e)->attr.addr, 0x2000u);
  EXPECT_EQ(m.schedule(0).used_mask, 0u);
}

TEST_F(GuestDr, Dr7WriteEnablesModifiesDisables) {
  write(0, 0x401000);
  write(1, 0x8003);
  write(7, dr7::l(0) | dr7::g(1) | (0b1101ull << 20));  // DR1: write, 4 bytes
  EXPECT_EQ(g.armed_mask(), 0b11u);
  const EventId e0 = *g.event(0);
  const EventId e1 = *g.event(1);
  EXPECT_EQ(m.spec(e0)->attr, exec(0x401000));
  EXPECT_EQ(m.spec(e1)->attr, (BpAttr{0x8000, 4, BpType::kWrite}));  // aligned down
  const EffectiveSet& eff = m.schedule(0);
  EXPECT_EQ(eff.used_mask, 0b11u);
  write(7, dr7::g(1) | (0b1011ull << 20));  // DR0 off, DR1: read/write, 8 bytes
  EXPECT_EQ(g.armed_mask(), 0b10u);
  EXPECT_EQ(m.state(e0).value(), EventState::kOff);
  EXPECT_EQ(m.spec(e1)->attr, (BpAttr{0x8000, 8, BpType::kReadWrite}));
  write(1, 0x9001);  // address write on an enabled slot updates the armed event
  EXPECT_EQ(m.spec(e1)->attr.addr, 0x9000u);
  EXPECT_EQ(read(1), 0x9001u);
  write(7, 0);
  EXPECT_EQ(g.armed_mask(), 0u);
  EXPECT_EQ(m.schedule(0).used_mask, 0u);
}

TEST_F(GuestDr, Dr7WithoutAddressWriteUsesZero) {
  write(7, dr7::l(3));
  ASSERT_TRUE(g.event(3).has_value());
  EXPECT_EQ(m.spec(*g.event(3))->attr, exec(0));
  EXPECT_EQ(g.armed_mask(), 0b1000u);
}

TEST_F(GuestDr, OddEncodingsAreAcceptedAsHardwareDoes) {
  write(0, 0x1003);
  write(1, 0x2000);
  write(2, 0x0000'8000'0000'0000);
  // DR0: execute with LEN = 4 bytes (undefined: armed as a 1-byte instruction breakpoint);
  // DR1: R/W = 10b (I/O): not armed; DR2: non-canonical: not armed.
  const std::uint64_t v =
      dr7::l(0) | dr7::l(1) | dr7::l(2) | (0b1100ull << 16) | (0b0010ull << 20) | (0b0001ull << 24);
  write(7, v);
  EXPECT_EQ(read(7), v | 0x400);
  EXPECT_EQ(m.spec(*g.event(0))->attr, exec(0x1003));
  EXPECT_EQ(g.armed_mask(), 0b001u);
  mode.cr4_de = true;
  write(7, v);
  EXPECT_EQ(g.armed_mask(), 0b001u);
}

TEST_F(GuestDr, HostEventsNeverShowInTheGuestFile) {
  must(m.create(spec(exec(0x7000), Binding::on_vcpu(0))));
  must(m.create(spec(exec(0x7001), Binding::target_all(3))));
  m.schedule(0);
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(read(i), 0u);
  EXPECT_EQ(read(7), 0x400u);
  EXPECT_EQ(read(6), 0xffff0ff0u);
}

TEST_F(GuestDr, VcpuBoundHostEventsCannotKeepTheGuestFromArming) {
  // Four vCPU-bound host events fill the host's 4 slots of vCPU 0; the guest has its own.
  for (std::uint64_t a = 0x7000; a < 0x7004; ++a)
    must(m.create(spec(exec(a), Binding::on_vcpu(0))));
  write(0, 0x100);
  write(7, dr7::l(0));
  const DrAccessResult r =
      g.mov_to_dr(7, dr7::l(0) | dr7::l(1) | dr7::l(2) | dr7::l(3) | (0b1101ull << 20), mode);
  EXPECT_EQ(r.action, Action::kOk);
  EXPECT_FALSE(r.arm_error.has_value());
  EXPECT_EQ(read(7), 0x400u | dr7::l(0) | dr7::l(1) | dr7::l(2) | dr7::l(3) | (0b1101ull << 20));
  EXPECT_EQ(g.armed_mask(), 0b1111u);
  EXPECT_EQ(m.constraints().target_pinned(kGuestTarget, 0, 0), 4u);
  EXPECT_EQ(m.constraints().vcpu_pinned(0, 0), 4u);
  const EffectiveSet& eff = m.schedule(0);
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(eff.slot_event[i], *g.event(i)) << i;
}

TEST(GuestDrSeparatePools, GuestHasFourSlotsInEveryPool) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::separate(1, 3)}, &clock);
  GuestDrFile& g = m.guest(0);
  CpuMode mode;
  ASSERT_FALSE(g.mov_to_dr(7, dr7::l(0) | dr7::l(1) | (0b0001ull << 16) | (0b0001ull << 20), mode)
                   .arm_error);
  // Both slots to execute: the host's instruction pool has one slot, the guest has its own 4.
  const auto r = g.mov_to_dr(7, dr7::l(0) | dr7::l(1), mode);
  EXPECT_FALSE(r.arm_error.has_value());
  EXPECT_EQ(m.spec(*g.event(0))->attr.type, BpType::kExecute);
  EXPECT_EQ(m.spec(*g.event(1))->attr.type, BpType::kExecute);
  EXPECT_EQ(m.constraints().target_pinned(kGuestTarget, 0, 0), 2u);
  EXPECT_EQ(m.constraints().target_pinned(kGuestTarget, 0, 1), 0u);
}

TEST_F(GuestDr, LoadReplacesTheFile) {
  GuestDebugRegs regs;
  regs.dr = {0x10, 0x20, 0x30, 0x40};
  regs.dr6 = dr6::b(3);
  regs.dr7 = dr7::g(2) | (0b0101ull << 24);
  EXPECT_FALSE(g.load(regs).has_value());
  const GuestDebugRegs back = g.values();
  EXPECT_EQ(back.dr, regs.dr);
  EXPECT_EQ(back.dr6, 0xffff0ff8u);
  EXPECT_EQ(back.dr7, regs.dr7 | 0x400);
  EXPECT_EQ(g.armed_mask(), 0b0100u);
  EXPECT_EQ(m.spec(*g.event(2))->attr, (BpAttr{0x30, 2, BpType::kWrite}));
}

TEST_F(GuestDr, EachVcpuHasItsOwnFile) {
  write(0, 0x1000);
  write(7, dr7::l(0));
  EXPECT_EQ(m.guest(1).read(0), 0u);
  EXPECT_EQ(m.guest(1).read(7), 0x400u);
  EXPECT_EQ(m.schedule(1).used_mask, 0u);
  EXPECT_EQ(m.schedule(0).used_mask, 1u);
}

}  // namespace
}  // namespace drvm::bp
