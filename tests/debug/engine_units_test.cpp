// The engines that need no KVM to check: the hardware engine's DR bookkeeping, the INT3 engine and
// its trap sites over guest memory (paging off: linear = physical).
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "bpcore/dr_encoding.hpp"
#include "vmm/debug/engines/hardware_engine.hpp"
#include "vmm/debug/engines/int3_engine.hpp"
#include "vmm/debug/engines/trap_sites.hpp"
#include "vmm/debug/site_scanner.hpp"

namespace drvm::vmm::debug {
namespace {

ProbeResult host_with_hardware_slots() {
  ProbeResult can;
  can.hw_insn_bp.answer = Answer::yes;
  can.hw_data_bp_write.answer = Answer::yes;
  can.hw_data_bp_rw.answer = Answer::yes;
  return can;
}

bp::BpAttr attr(bp::BpType type, std::uint64_t addr, std::uint32_t len) {
  bp::BpAttr a;
  a.type = type;
  a.addr = addr;
  a.len = len;
  return a;
}

TEST(HardwareEngineUnit, ArmsFourSlotsOnDistinctDrsAndProgramsTheirDr7Fields) {
  HardwareEngine hw;
  const ProbeResult can = host_with_hardware_slots();
  // Slots need not be consecutive: slot i gets the next free DR.
  const std::array<unsigned, 5> slots{7, 2, 9, 0, 5};
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_TRUE(hw.arm(slots[i], attr(bp::BpType::kWrite, 0x1000 + 8 * i, 8), can));
    EXPECT_EQ(hw.dr_of(slots[i]), static_cast<int>(i));
  }
  EXPECT_TRUE(hw.full());
  EXPECT_FALSE(hw.arm(slots[4], attr(bp::BpType::kWrite, 0x2000, 4), can));
  EXPECT_FALSE(hw.armed(slots[4]));

  kvm_guest_debug debug{};
  hw.program(debug);
  EXPECT_TRUE(debug.control & KVM_GUESTDBG_USE_HW_BP);
  for (unsigned n = 0; n < 4; ++n) {
    EXPECT_EQ(debug.arch.debugreg[n], 0x1000 + 8 * n);
    EXPECT_EQ(debug.arch.debugreg[7] & bp::dr7::slot_mask(n),
              bp::encode_dr7_slot(n, attr(bp::BpType::kWrite, 0, 8)) & bp::dr7::slot_mask(n));
  }
}

TEST(HardwareEngineUnit, MapsDr6HitsBackToSlots) {
  HardwareEngine hw;
  const ProbeResult can = host_with_hardware_slots();
  ASSERT_TRUE(hw.arm(3, attr(bp::BpType::kExecute, 0x100000, 1), can));    // DR0
  ASSERT_TRUE(hw.arm(6, attr(bp::BpType::kReadWrite, 0x200000, 4), can));  // DR1
  EXPECT_EQ(hw.slots_hit(0xffff0ff1), std::uint64_t{1} << 3);
  EXPECT_EQ(hw.slots_hit(0xffff0ff2), std::uint64_t{1} << 6);
  EXPECT_EQ(hw.slots_hit(0xffff0ff3), (std::uint64_t{1} << 3) | (std::uint64_t{1} << 6));
  // B2/B3 name no armed DR; BS alone is no hardware hit.
  EXPECT_EQ(hw.slots_hit(0xffff0ffc), 0u);
  EXPECT_EQ(hw.slots_hit(0xffff4ff0), 0u);
}

TEST(HardwareEngineUnit, AStepOverQuietsOnlyThatDrUntilTheStepEnds) {
  HardwareEngine hw;
  const ProbeResult can = host_with_hardware_slots();
  ASSERT_TRUE(hw.arm(0, attr(bp::BpType::kExecute, 0x100000, 1), can));  // DR0
  ASSERT_TRUE(hw.arm(1, attr(bp::BpType::kWrite, 0x200000, 8), can));    // DR1
  hw.suppress_for_step(std::uint64_t{1} << 0);
  kvm_guest_debug debug{};
  hw.program(debug);
  EXPECT_EQ(debug.arch.debugreg[7] & bp::dr7::slot_mask(0), 0u);  // DR0 quiet for the step
  EXPECT_NE(debug.arch.debugreg[7] & bp::dr7::slot_mask(1), 0u);  // DR1 still armed
  EXPECT_EQ(hw.slots_hit(0xffff0ff1), 0u);  // KVM may report the stepped-over DR0
  // A re-arm during the step keeps the quieting; the step's end lifts it.
  hw.disarm();
  EXPECT_EQ(hw.suppressed_drs(), 1u);
  hw.end_step();
  ASSERT_TRUE(hw.arm(0, attr(bp::BpType::kExecute, 0x100000, 1), can));
  kvm_guest_debug after{};
  hw.program(after);
  EXPECT_NE(after.arch.debugreg[7] & bp::dr7::slot_mask(0), 0u);
}

TEST(HardwareEngineUnit, RefusesWhatTheHostCannotDeliver) {
  HardwareEngine hw;
  ProbeResult can = host_with_hardware_slots();
  can.hw_data_bp_rw.answer = Answer::no;
  EXPECT_FALSE(hw.arm(0, attr(bp::BpType::kReadWrite, 0x1000, 4), can));
  EXPECT_TRUE(hw.arm(0, attr(bp::BpType::kWrite, 0x1000, 4), can));
  kvm_guest_debug none{};
  HardwareEngine().program(none);
  EXPECT_EQ(none.control, 0u);  // nothing armed: no USE_HW_BP
}

class Int3EngineUnit : public ::testing::Test {
 protected:
  Int3EngineUnit() : memory(1 << 20), sites(memory) {
    const std::uint8_t code[] = {0x48, 0x89, 0xc3, 0x90, 0xc3};  // mov %rax,%rbx; nop; ret
    std::memcpy(memory.host(0x1000, sizeof code), code, sizeof code);
  }
  std::uint8_t byte_at(std::uint64_t gpa) { return static_cast<std::uint8_t>(*memory.host(gpa)); }
  GuestMemory memory;
  TrapSites sites;
  ImageCode code;  // no image: every address may start an instruction
};

TEST_F(Int3EngineUnit, PlantsSharedSitesAndRestoresTheByteWithTheLastReference) {
  Int3Engine vcpu0(sites, code);
  Int3Engine vcpu1(sites, code);
  ASSERT_TRUE(vcpu0.arm(0, 0x1003));
  ASSERT_TRUE(vcpu1.arm(4, 0x1003));  // the same breakpoint on another vCPU
  EXPECT_EQ(byte_at(0x1003), TrapSites::kInt3);
  vcpu0.disarm();
  EXPECT_EQ(byte_at(0x1003), TrapSites::kInt3);  // vCPU 1 still needs it
  vcpu1.disarm();
  EXPECT_EQ(byte_at(0x1003), 0x90);
  EXPECT_FALSE(vcpu1.armed(4));
}

TEST_F(Int3EngineUnit, NeverPlantsInsideAnInstructionOfTheImage) {
  code.ranges.push_back({0x1000, 5});
  code.instruction_starts = {0x1000, 0x1003, 0x1004};
  Int3Engine engine(sites, code);
  EXPECT_FALSE(engine.arm(0, 0x1001));  // inside the MOV
  EXPECT_EQ(byte_at(0x1001), 0x89);
  EXPECT_TRUE(engine.arm(1, 0x1004));
}

TEST_F(Int3EngineUnit, AStepLiftsTheSiteAndItsEndPlantsItAgain) {
  Int3Engine engine(sites, code);
  ASSERT_TRUE(engine.arm(0, 0x1000));
  engine.lift(0x1000);
  EXPECT_TRUE(engine.lifted());
  EXPECT_EQ(byte_at(0x1000), 0x48);
  engine.replant();
  EXPECT_FALSE(engine.lifted());
  EXPECT_EQ(byte_at(0x1000), TrapSites::kInt3);
}

TEST_F(Int3EngineUnit, CodeIsFetchedAsTheGuestWroteIt) {
  Int3Engine engine(sites, code);
  ASSERT_TRUE(engine.arm(0, 0x1000));
  ASSERT_TRUE(engine.arm(1, 0x1004));
  kvm_regs regs{};
  regs.rip = 0x1000;
  kvm_sregs sregs{};  // paging off, CS base 0
  std::array<std::uint8_t, kMaxInstruction> bytes{};
  ASSERT_EQ(sites.fetch_instruction(regs, sregs, bytes), kMaxInstruction);
  EXPECT_EQ(bytes[0], 0x48);
  EXPECT_EQ(bytes[4], 0xc3);
  std::array<std::uint8_t, 2> two{};
  EXPECT_EQ(sites.read_original(0x1003, two), 2u);
  EXPECT_EQ(two[1], 0xc3);
}

}  // namespace
}  // namespace drvm::vmm::debug
