#include "vmm/devices/interrupt_controllers.hpp"

#include <time.h>

#include <cstring>
#include <vector>

#include "vmm/x86/x86.hpp"

namespace drvm::vmm::irq {

namespace {

// Local APIC register offsets (Intel SDM vol. 3, table 11-1).
constexpr unsigned kApicSvr = 0xf0;
constexpr unsigned kApicLvtTimer = 0x320;
constexpr unsigned kApicLvtLint0 = 0x350;
constexpr unsigned kApicLvtLint1 = 0x360;
constexpr unsigned kApicTimerInitial = 0x380;
constexpr unsigned kApicTimerCurrent = 0x390;
constexpr unsigned kApicIrr = 0x200;  // eight 32-bit registers, 16 bytes apart
constexpr std::uint32_t kApicSoftwareEnable = 1u << 8;
constexpr std::uint32_t kLvtMasked = 1u << 16;
constexpr std::uint32_t kLvtDeliveryExtInt = 7u << 8;
constexpr std::uint32_t kLvtDeliveryNmi = 4u << 8;
constexpr std::uint64_t kApicBaseEnable = 1u << 11;
constexpr std::uint32_t kMsrTscDeadline = 0x6e0;
constexpr std::uint64_t kIoapicRedirectionMasked = 1u << 16;
constexpr std::uint64_t kPitHz = 1193182;
// LVT timer modes (bits 17-18).
constexpr unsigned kTimerOneShot = 0;
constexpr unsigned kTimerPeriodic = 1;
constexpr unsigned kTimerTscDeadline = 2;

constexpr unsigned lvt_timer_mode(std::uint32_t lvt) {
  return (lvt >> 17) & 3;
}

std::uint32_t apic_reg(const kvm_lapic_state& state, unsigned offset) {
  std::uint32_t value;
  std::memcpy(&value, state.regs + offset, sizeof value);
  return value;
}

void set_apic_reg(kvm_lapic_state& state, unsigned offset, std::uint32_t value) {
  std::memcpy(state.regs + offset, &value, sizeof value);
}

kvm_irq_routing_entry route(std::uint32_t gsi, std::uint32_t chip, std::uint32_t pin) {
  kvm_irq_routing_entry entry{};
  entry.gsi = gsi;
  entry.type = KVM_IRQ_ROUTING_IRQCHIP;
  entry.u.irqchip.irqchip = chip;
  entry.u.irqchip.pin = pin;
  return entry;
}

std::int64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// Whether PIT channel 0 will still reach its terminal count (and so raise IRQ 0).
bool pit_counting(const kvm_pit_state2& pit, std::int64_t now_ns) {
  const kvm_pit_channel_state& channel = pit.channels[0];
  switch (channel.mode) {
    case 2:  // rate generator
    case 3:  // square wave
    case 6:
    case 7:
      return true;
    case 0:  // interrupt on terminal count
    case 1:
    case 4:
    case 5: {
      // One-shot: counting until count ticks after it was loaded (KVM stamps CLOCK_MONOTONIC).
      const std::int64_t count = channel.count == 0 ? 0x10000 : channel.count;
      const std::int64_t period_ns = count * 1000000000 / static_cast<std::int64_t>(kPitHz);
      return now_ns < channel.count_load_time + period_ns;
    }
    default:  // never programmed (KVM resets the mode to 0xff)
      return false;
  }
}

}  // namespace

void create_interrupt_controllers(Vm& vm) {
  vm.create_irqchip();
  std::vector<kvm_irq_routing_entry> routes;
  for (std::uint32_t gsi = 0; gsi < 16; ++gsi) {
    if (gsi == 2) continue;  // the cascade: no device drives it
    routes.push_back(gsi < 8 ? route(gsi, KVM_IRQCHIP_PIC_MASTER, gsi)
                             : route(gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8));
  }
  for (std::uint32_t gsi = 0; gsi < kIoapicPins; ++gsi) {
    if (gsi == kPitIoapicPin) continue;  // pin 2 is IRQ 0's
    routes.push_back(route(gsi, KVM_IRQCHIP_IOAPIC, ioapic_pin(gsi)));
  }
  vm.set_gsi_routing(routes);
  // Port 0x61 (PIT channel 2 gate, speaker) handled in the kernel as well.
  vm.create_pit2(KVM_PIT_SPEAKER_DUMMY);

  for (const std::uint32_t chip_id : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE}) {
    kvm_irqchip chip = vm.irqchip(chip_id);
    kvm_pic_state& pic = chip.chip.pic;
    const bool master = chip_id == KVM_IRQCHIP_PIC_MASTER;
    pic.irq_base = master ? kPicMasterVectorBase : kPicSlaveVectorBase;
    pic.imr = 0xff;
    pic.irr = pic.isr = pic.last_irr = 0;
    pic.init_state = 0;
    pic.init4 = 1;
    pic.auto_eoi = 0;
    pic.special_fully_nested_mode = 0;
    vm.set_irqchip(chip);
  }
}

void set_bios_lint(Vcpu& vcpu) {
  kvm_lapic_state state = vcpu.lapic();
  set_apic_reg(state, kApicLvtLint0, kLvtDeliveryExtInt);
  set_apic_reg(state, kApicLvtLint1, kLvtDeliveryNmi);
  vcpu.set_lapic(state);
}

WakeCheck judge_wake_sources(const InterruptState& state) {
  WakeCheck check;
  if (state.nmi_pending) {
    // Another vCPU's NMI IPI, queued while this one was outside KVM_RUN.
    check.can_wake = true;
    check.detail = "waiting for a pending NMI";
    return check;
  }
  if ((state.rflags & x86::kRflagsIf) == 0) {
    // Only an NMI could end this HLT, and nothing in drvm's platform raises one.
    check.detail = "with interrupts disabled";
    return check;
  }
  const kvm_lapic_state& lapic = state.lapic;
  const bool apic_enabled = (state.apic_base & kApicBaseEnable) != 0;
  const bool apic_software_enabled =
      apic_enabled && (apic_reg(lapic, kApicSvr) & kApicSoftwareEnable) != 0;
  // The PIC's output reaches the CPU through LINT0 in ExtINT mode, or directly when the local
  // APIC is disabled.
  const std::uint32_t lint0 = apic_reg(lapic, kApicLvtLint0);
  const bool pic_reaches_cpu =
      !apic_enabled || ((lint0 & kLvtMasked) == 0 && (lint0 & (7u << 8)) == kLvtDeliveryExtInt);
  const auto routed = [&](std::uint32_t isa_irq) {
    bool through_pic = pic_reaches_cpu;
    if (isa_irq < 8) {
      through_pic = through_pic && (state.pic_master.imr & (1u << isa_irq)) == 0;
    } else {
      through_pic = through_pic && (state.pic_master.imr & (1u << 2)) == 0 &&
                    (state.pic_slave.imr & (1u << (isa_irq - 8))) == 0;
    }
    const bool through_ioapic =
        apic_software_enabled &&
        (state.ioapic.redirtbl[ioapic_pin(isa_irq)].bits & kIoapicRedirectionMasked) == 0;
    return through_pic || through_ioapic;
  };

  std::string sources;
  const auto add = [&](const char* source) {
    sources += sources.empty() ? "" : ", ";
    sources += source;
  };
  // An interrupt already requested (another vCPU's IPI that arrived while this one was outside
  // KVM_RUN): KVM delivers it on the next entry. Counted whatever the TPR says (conservative).
  bool requested = false;
  for (unsigned reg = 0; reg < 8; ++reg) requested |= apic_reg(lapic, kApicIrr + 16 * reg) != 0;
  if (apic_enabled && requested) add("an interrupt pending in the local APIC (IRR)");
  const std::uint32_t lvt_timer = apic_reg(lapic, kApicLvtTimer);
  if (apic_software_enabled && (lvt_timer & kLvtMasked) == 0) {
    bool armed = false;
    switch (lvt_timer_mode(lvt_timer)) {
      case kTimerOneShot:  // until the current count reaches 0
        armed = apic_reg(lapic, kApicTimerCurrent) != 0;
        break;
      case kTimerPeriodic:
        armed = apic_reg(lapic, kApicTimerInitial) != 0;
        break;
      case kTimerTscDeadline:
        armed = state.tsc_deadline != 0;
        break;
      default:
        break;
    }
    if (armed) add("the local APIC timer");
  }
  if (pit_counting(state.pit, state.now_ns) && routed(kPitIrq)) add("the PIT (IRQ 0)");
  if (state.com1_can_interrupt && routed(state.com1_irq)) add("COM1's receive interrupt (IRQ 4)");
  check.can_wake = !sources.empty();
  check.detail = check.can_wake
                     ? "waiting for " + sources
                     : "with interrupts enabled, but nothing can raise one (local APIC timer "
                       "stopped or masked, PIT not counting or IRQ 0 masked, COM1's receive "
                       "interrupt off, its input closed or IRQ 4 masked, no interrupt pending)";
  return check;
}

WakeCheck check_wake_sources(Vm& vm, Vcpu& vcpu, const kvm_regs& regs, const kvm_sregs& sregs,
                             bool com1_can_interrupt, std::uint32_t com1_irq) {
  InterruptState state;
  state.rflags = regs.rflags;
  const kvm_vcpu_events events = vcpu.events();
  state.nmi_pending = events.nmi.pending != 0 || events.nmi.injected != 0;
  if ((regs.rflags & x86::kRflagsIf) == 0) return judge_wake_sources(state);
  state.apic_base = sregs.apic_base;
  state.lapic = vcpu.lapic();
  if (lvt_timer_mode(apic_reg(state.lapic, kApicLvtTimer)) == kTimerTscDeadline) {
    state.tsc_deadline = vcpu.msr(kMsrTscDeadline);
  }
  state.pic_master = vm.irqchip(KVM_IRQCHIP_PIC_MASTER).chip.pic;
  state.pic_slave = vm.irqchip(KVM_IRQCHIP_PIC_SLAVE).chip.pic;
  state.ioapic = vm.irqchip(KVM_IRQCHIP_IOAPIC).chip.ioapic;
  state.pit = vm.pit_state();
  state.now_ns = monotonic_ns();
  state.com1_can_interrupt = com1_can_interrupt;
  state.com1_irq = com1_irq;
  return judge_wake_sources(state);
}

}  // namespace drvm::vmm::irq
