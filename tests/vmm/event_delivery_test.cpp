// IDT gates, the software-interrupt checks and drvm's own frame delivery (SDM Vol. 3, 6.10-6.14),
// on a flat guest memory with paging off.
#include <gtest/gtest.h>

#include <array>

#include "vmm/x86/event_delivery.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm {
namespace {

constexpr std::uint64_t kIdt = 0x1000;
constexpr std::uint64_t kStack = 0x8000;

kvm_sregs long_mode_ring0() {
  kvm_sregs sregs{};
  sregs.efer = x86::kEferLma | x86::kEferLme;
  sregs.cs.l = 1;
  sregs.cs.selector = 0x8;
  sregs.ss.selector = 0x10;
  sregs.idt.base = kIdt;
  sregs.idt.limit = 16 * 256 - 1;
  return sregs;
}

// A 16-byte long-mode gate: handler, selector, IST, type, DPL, present.
void put_gate64(GuestMemory& memory, std::uint8_t vector, std::uint64_t handler,
                std::uint16_t selector, unsigned type, unsigned dpl, bool present,
                unsigned ist = 0) {
  const std::uint64_t low = (handler & 0xffff) | (std::uint64_t{selector} << 16) |
                            (std::uint64_t{ist} << 32) | (std::uint64_t{type} << 40) |
                            (std::uint64_t{dpl} << 45) | (std::uint64_t{present} << 47) |
                            ((handler & 0xffff0000) << 32);
  const std::array<std::uint64_t, 2> gate = {low, handler >> 32};
  ASSERT_TRUE(memory.write(kIdt + vector * 16u, std::as_bytes(std::span(gate))));
}

std::uint64_t word(const GuestMemory& memory, std::uint64_t gpa) {
  std::uint64_t value = 0;
  EXPECT_TRUE(memory.read(gpa, std::as_writable_bytes(std::span(&value, 1))));
  return value;
}

TEST(EventDelivery, ReadsLongModeAndProtectedModeGates) {
  GuestMemory memory(1 << 20);
  put_gate64(memory, 0x21, 0xffffffff81234567, 0x8, 0xe, 3, true, 2);
  const auto gate = read_idt_gate(memory, long_mode_ring0(), 0x21);
  ASSERT_TRUE(gate);
  EXPECT_EQ(gate->handler, 0xffffffff81234567u);
  EXPECT_EQ(gate->selector, 0x8);
  EXPECT_EQ(gate->type, 0xeu);
  EXPECT_EQ(gate->dpl, 3u);
  EXPECT_EQ(gate->ist, 2u);
  EXPECT_TRUE(gate->present);

  kvm_sregs protected_mode{};
  protected_mode.cr0 = x86::kCr0Pe;
  protected_mode.idt.base = kIdt;
  protected_mode.idt.limit = 8 * 0x22 - 1;
  // An 8-byte gate: vector 0x21 sits at IDT + 0x108, the high dword holds no offset bits.
  const std::array<std::uint32_t, 2> gate32 = {0x00101234, 0xffff8f00};
  ASSERT_TRUE(memory.write(kIdt + 0x21 * 8, std::as_bytes(std::span(gate32))));
  const auto legacy = read_idt_gate(memory, protected_mode, 0x21);
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->handler, 0xffff1234u);
  EXPECT_EQ(legacy->selector, 0x10);
  EXPECT_EQ(legacy->type, 0xfu);
  EXPECT_EQ(legacy->ist, 0u);
  EXPECT_FALSE(read_idt_gate(memory, protected_mode, 0x22));  // beyond the limit
}

TEST(EventDelivery, SoftwareInterruptChecksDplBeforePresent) {
  IdtGate gate;
  gate.dpl = 0;
  gate.present = false;
  const auto gp = software_interrupt_fault(gate, 3, 0x80);
  ASSERT_TRUE(gp);
  EXPECT_EQ(gp->vector, x86::kVectorGp);
  EXPECT_EQ(gp->error_code, (0x80u << 3) | 2);
  const auto np = software_interrupt_fault(gate, 0, 0x80);
  ASSERT_TRUE(np);
  EXPECT_EQ(np->vector, x86::kVectorNp);
  gate.present = true;
  EXPECT_FALSE(software_interrupt_fault(gate, 0, 0x80));
  EXPECT_FALSE(software_interrupt_fault(std::nullopt, 3, 0x80));  // KVM raises that #GP
}

TEST(EventDelivery, WritesTheSamePrivilegeFrameAndClearsFlags) {
  GuestMemory memory(1 << 20);
  put_gate64(memory, x86::kVectorGp, 0x4000, 0x8, 0xe, 0, true);
  kvm_regs regs{};
  regs.rip = 0x2000;
  regs.rsp = kStack + 8;  // not 16-byte aligned: the frame starts below the aligned RSP
  regs.rflags = 0x2 | x86::kRflagsIf | x86::kRflagsRf;
  const std::uint64_t pushed = regs.rflags | x86::kRflagsTf;
  ASSERT_TRUE(deliver_without_privilege_change(memory, long_mode_ring0(), regs,
                                               Exception{x86::kVectorGp, 0x18}, pushed));
  EXPECT_EQ(regs.rip, 0x4000u);
  EXPECT_EQ(regs.rsp, kStack - 48);
  EXPECT_EQ(regs.rflags, 0x2u);                   // an interrupt gate clears IF; TF, RF cleared too
  EXPECT_EQ(word(memory, kStack - 48), 0x18u);    // error code
  EXPECT_EQ(word(memory, kStack - 40), 0x2000u);  // RIP
  EXPECT_EQ(word(memory, kStack - 32), 0x8u);     // CS
  EXPECT_EQ(word(memory, kStack - 24), pushed);   // RFLAGS as the caller gave it
  EXPECT_EQ(word(memory, kStack - 16), kStack + 8);  // RSP
  EXPECT_EQ(word(memory, kStack - 8), 0x10u);        // SS
}

TEST(EventDelivery, LeavesOtherGatesToKvm) {
  GuestMemory memory(1 << 20);
  kvm_regs regs{};
  regs.rsp = kStack;
  const kvm_regs before = regs;
  const auto refused = [&](std::uint8_t vector) {
    return !deliver_without_privilege_change(memory, long_mode_ring0(), regs,
                                             Exception{vector, std::nullopt}, 0x2) &&
           regs.rip == before.rip && regs.rsp == before.rsp;
  };
  put_gate64(memory, 1, 0x4000, 0x8, 0xe, 0, true, 1);  // IST stack switch
  EXPECT_TRUE(refused(1));
  put_gate64(memory, 2, 0x4000, 0x18, 0xe, 0, true);  // another code segment
  EXPECT_TRUE(refused(2));
  put_gate64(memory, 3, 0x4000, 0x8, 0xf, 0, false);  // not present
  EXPECT_TRUE(refused(3));
  put_gate64(memory, 4, 0x4000, 0x8, 0xf, 0, true);  // a trap gate: taken, IF kept
  regs.rflags = 0x2 | x86::kRflagsIf;
  EXPECT_TRUE(deliver_without_privilege_change(memory, long_mode_ring0(), regs,
                                               Exception{4, std::nullopt}, regs.rflags));
  EXPECT_EQ(regs.rflags, 0x2 | x86::kRflagsIf);
  EXPECT_EQ(regs.rsp, kStack - 40);
}

}  // namespace
}  // namespace drvm::vmm
