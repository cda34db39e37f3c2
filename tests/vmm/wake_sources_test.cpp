// The HLT rule (docs/vmm.md, "HLT"): from a snapshot of the vCPU and the interrupt controllers,
// whether anything can still end a HLT (label unit).
#include <gtest/gtest.h>

#include <cstring>

#include "vmm/devices/interrupt_controllers.hpp"

namespace drvm::vmm::irq {
namespace {

constexpr std::uint64_t kIf = 1u << 9;
constexpr std::uint64_t kApicEnabled = 0xfee00000 | (1u << 11);
constexpr std::uint32_t kMasked = 1u << 16;

void set_reg(kvm_lapic_state& lapic, unsigned offset, std::uint32_t value) {
  std::memcpy(lapic.regs + offset, &value, sizeof value);
}

// A PVH guest after guest_interrupts_init(): APIC software-enabled, PIC masked, every I/O APIC pin
// masked, LINT0 ExtINT, no timer, the PIT never programmed, interrupts enabled.
InterruptState idle_guest() {
  InterruptState state;
  state.rflags = kIf | 2;
  state.apic_base = kApicEnabled;
  set_reg(state.lapic, 0xf0, 0x1ff);     // SVR: enabled, spurious 0xff
  set_reg(state.lapic, 0x320, kMasked);  // LVT timer
  set_reg(state.lapic, 0x350, 0x700);    // LINT0 ExtINT
  state.pic_master.imr = 0xff;
  state.pic_slave.imr = 0xff;
  for (auto& entry : state.ioapic.redirtbl) entry.bits = kMasked;
  state.pit.channels[0].mode = 0xff;
  state.now_ns = 1'000'000'000;
  return state;
}

TEST(WakeSources, InterruptsDisabledIsHalted) {
  InterruptState state = idle_guest();
  state.rflags = 2;
  set_reg(state.lapic, 0x320, 0x20040);  // even a periodic timer cannot end it
  set_reg(state.lapic, 0x380, 1000);
  const WakeCheck check = judge_wake_sources(state);
  EXPECT_FALSE(check.can_wake);
  EXPECT_EQ(check.detail, "with interrupts disabled");
}

TEST(WakeSources, NothingArmedIsHalted) {
  const WakeCheck check = judge_wake_sources(idle_guest());
  EXPECT_FALSE(check.can_wake);
  EXPECT_NE(check.detail.find("with interrupts enabled, but nothing can raise one"),
            std::string::npos);
}

// Another vCPU's IPI that arrived while this one was outside KVM_RUN sits in its IRR.
TEST(WakeSources, AnInterruptPendingInTheIrrWakes) {
  InterruptState state = idle_guest();
  set_reg(state.lapic, 0x200 + 16 * 2, 1u << 16);  // vector 0x50
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  EXPECT_EQ(judge_wake_sources(state).detail,
            "waiting for an interrupt pending in the local APIC (IRR)");
  state.rflags = 2;  // with interrupts disabled it cannot end the HLT
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
}

// Another vCPU's NMI IPI ends even a HLT with interrupts disabled.
TEST(WakeSources, APendingNmiWakesEvenWithInterruptsDisabled) {
  InterruptState state = idle_guest();
  state.rflags = 2;
  state.nmi_pending = true;
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  EXPECT_EQ(judge_wake_sources(state).detail, "waiting for a pending NMI");
}

TEST(WakeSources, LapicTimerInEachMode) {
  InterruptState state = idle_guest();
  set_reg(state.lapic, 0x320, 0x20040);  // periodic, vector 0x40
  set_reg(state.lapic, 0x380, 625000);
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  EXPECT_EQ(judge_wake_sources(state).detail, "waiting for the local APIC timer");
  set_reg(state.lapic, 0x380, 0);  // initial count 0 stops it
  EXPECT_FALSE(judge_wake_sources(state).can_wake);

  set_reg(state.lapic, 0x320, 0x40);  // one-shot: armed while the current count runs
  set_reg(state.lapic, 0x390, 5);
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  set_reg(state.lapic, 0x390, 0);  // expired
  EXPECT_FALSE(judge_wake_sources(state).can_wake);

  set_reg(state.lapic, 0x320, 0x40040);  // TSC deadline
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
  state.tsc_deadline = 123456;
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
}

TEST(WakeSources, MaskedOrSoftwareDisabledLapicTimerCannotWake) {
  InterruptState state = idle_guest();
  set_reg(state.lapic, 0x320, 0x20040 | kMasked);
  set_reg(state.lapic, 0x380, 625000);
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
  set_reg(state.lapic, 0x320, 0x20040);
  set_reg(state.lapic, 0xf0, 0xff);  // SVR bit 8 clear
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
  set_reg(state.lapic, 0xf0, 0x1ff);
  state.apic_base = 0xfee00000;  // globally disabled
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
}

TEST(WakeSources, PeriodicPitWakesOnlyWhereIrq0IsRouted) {
  InterruptState state = idle_guest();
  state.pit.channels[0].mode = 2;
  state.pit.channels[0].count = 11932;
  EXPECT_FALSE(judge_wake_sources(state).can_wake);  // masked at the PIC and the I/O APIC
  state.ioapic.redirtbl[2].bits = 0x20;              // pin 2: IRQ 0's
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  EXPECT_EQ(judge_wake_sources(state).detail, "waiting for the PIT (IRQ 0)");
  state.ioapic.redirtbl[2].bits = kMasked;
  state.ioapic.redirtbl[0].bits = 0x20;  // pin 0 is not IRQ 0's
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
  state.pic_master.imr = 0xfe;  // through the PIC and LINT0
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  set_reg(state.lapic, 0x350, 0x700 | kMasked);  // LINT0 masked: the PIC cannot reach the CPU
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
}

TEST(WakeSources, OneShotPitWakesUntilItsCountRunsOut) {
  InterruptState state = idle_guest();
  state.pic_master.imr = 0xfe;
  state.pit.channels[0].mode = 0;
  state.pit.channels[0].count = 11932;  // 10 ms
  state.pit.channels[0].count_load_time = state.now_ns - 5'000'000;
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  state.pit.channels[0].count_load_time = state.now_ns - 20'000'000;
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
}

TEST(WakeSources, Com1ReceiveInterruptWithOpenInput) {
  InterruptState state = idle_guest();
  state.com1_can_interrupt = true;
  EXPECT_FALSE(judge_wake_sources(state).can_wake);  // IRQ 4 masked everywhere
  state.ioapic.redirtbl[4].bits = 0x24;
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
  EXPECT_EQ(judge_wake_sources(state).detail, "waiting for COM1's receive interrupt (IRQ 4)");
  state.com1_can_interrupt = false;  // input closed, or the interrupt off
  EXPECT_FALSE(judge_wake_sources(state).can_wake);
}

TEST(WakeSources, SlavePicLinesNeedTheCascade) {
  InterruptState state = idle_guest();
  state.com1_can_interrupt = true;
  state.com1_irq = 10;  // a device on the slave PIC
  state.pic_slave.imr = 0xfb;
  EXPECT_FALSE(judge_wake_sources(state).can_wake);  // IRQ 2 (the cascade) masked
  state.pic_master.imr = 0xfb;
  EXPECT_TRUE(judge_wake_sources(state).can_wake);
}

TEST(WakeSources, IsaIrq0IsIoapicPin2) {
  EXPECT_EQ(ioapic_pin(0), 2u);
  EXPECT_EQ(ioapic_pin(4), 4u);
}

}  // namespace
}  // namespace drvm::vmm::irq
