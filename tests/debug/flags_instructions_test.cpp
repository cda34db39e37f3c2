// PUSHF, POPF and IRET as --exact executes them (SDM Vol. 2), and the paging-structure walk that
// tells which guest pages to write-protect for a watched translation.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "vmm/debug/flags_instructions.hpp"
#include "vmm/kvm/guest_memory.hpp"
#include "vmm/x86/paging.hpp"

namespace drvm::vmm::debug {
namespace {

constexpr std::uint64_t kStack = 0x8000;
constexpr std::uint64_t kTf = 1u << 8;
constexpr std::uint64_t kRf = 1u << 16;

kvm_sregs ring0_long_mode() {
  kvm_sregs sregs{};
  sregs.efer = 1u << 10;  // paging off: linear = physical, enough for the stack accesses
  sregs.cs.l = 1;
  sregs.cs.selector = 0x8;
  sregs.ss.selector = 0x10;
  return sregs;
}

void put(GuestMemory& memory, std::uint64_t gpa, std::uint64_t value) {
  ASSERT_TRUE(memory.write(gpa, std::as_bytes(std::span(&value, 1))));
}
std::uint64_t get(GuestMemory& memory, std::uint64_t gpa) {
  std::uint64_t value = 0;
  EXPECT_TRUE(memory.read(gpa, std::as_writable_bytes(std::span(&value, 1))));
  return value;
}

TEST(FlagsInstructions, PopfLoadsTfAndClearsRf) {
  GuestMemory memory(1 << 20);
  put(memory, kStack, 0x246 | kTf | kRf);
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rsp = kStack;
  regs.rflags = 0x2 | kRf;
  const std::uint8_t popfq[] = {0x9d};
  const auto done = emulate_flags_instruction(popfq, regs, ring0_long_mode(), memory);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->regs.rflags, 0x246 | kTf);  // RF is never loaded by POPF
  EXPECT_EQ(done->regs.rsp, kStack + 8);
  EXPECT_EQ(done->regs.rip, 0x1001u);
  EXPECT_EQ(done->stack.type, bp::Access::kRead);
  EXPECT_EQ(done->stack.size, 8u);
}

TEST(FlagsInstructions, IretLoadsTheFrameIncludingRf) {
  GuestMemory memory(1 << 20);
  const std::array<std::uint64_t, 5> frame = {0x4000, 0x8, 0x202 | kTf | kRf, 0x9000, 0x10};
  for (unsigned i = 0; i < frame.size(); ++i) put(memory, kStack + 8 * i, frame[i]);
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rsp = kStack;
  regs.rflags = 0x2;
  const std::uint8_t iretq[] = {0x48, 0xcf};
  const auto done = emulate_flags_instruction(iretq, regs, ring0_long_mode(), memory);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->regs.rip, 0x4000u);
  EXPECT_EQ(done->regs.rflags, 0x202 | kTf | kRf);
  EXPECT_EQ(done->regs.rsp, 0x9000u);
  EXPECT_EQ(done->stack.size, 40u);
  // Another code segment needs a descriptor load: left to the processor.
  put(memory, kStack + 8, 0x18);
  EXPECT_FALSE(emulate_flags_instruction(iretq, regs, ring0_long_mode(), memory));
}

TEST(FlagsInstructions, PushfPushesTfWithoutRf) {
  GuestMemory memory(1 << 20);
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rsp = kStack;
  regs.rflags = 0x2 | kTf | kRf;
  const std::uint8_t pushfq[] = {0x9c};
  const auto done = emulate_flags_instruction(pushfq, regs, ring0_long_mode(), memory);
  ASSERT_TRUE(done);
  EXPECT_EQ(get(memory, kStack - 8), 0x2 | kTf);
  EXPECT_EQ(done->regs.rsp, kStack - 8);
  EXPECT_EQ(done->stack.type, bp::Access::kWrite);
}

TEST(FlagsInstructions, OtherFormsAreStepped) {
  GuestMemory memory(1 << 20);
  kvm_regs regs{};
  regs.rsp = kStack;
  const std::uint8_t popf16[] = {0x66, 0x9d};
  EXPECT_FALSE(emulate_flags_instruction(popf16, regs, ring0_long_mode(), memory));
  const std::uint8_t nop[] = {0x90};
  EXPECT_FALSE(emulate_flags_instruction(nop, regs, ring0_long_mode(), memory));
  kvm_sregs ring3 = ring0_long_mode();
  ring3.cs.selector = 0x1b;
  const std::uint8_t popfq[] = {0x9d};
  EXPECT_FALSE(emulate_flags_instruction(popfq, regs, ring3, memory));
}

TEST(PagingStructures, FourLevelWalkStopsAtALargePage) {
  GuestMemory memory(1 << 20);
  put(memory, 0x1000, 0x2000 | 3);           // PML4[0] -> PDPT
  put(memory, 0x2000, 0x3000 | 3);           // PDPT[0] -> PD
  put(memory, 0x3000 + 8, 0x200000 | 0x83);  // PD[1]: 2 MiB page
  put(memory, 0x3000 + 16, 0x4000 | 3);      // PD[2] -> PT
  PagingState paging{1u << 31, 0x1000, 1u << 5, 1u << 10};
  auto walk = translate(memory, paging, 0x280000).tables;
  ASSERT_EQ(walk.count, 3u);
  EXPECT_EQ(walk.page[0], 0x1000u);
  EXPECT_EQ(walk.page[1], 0x2000u);
  EXPECT_EQ(walk.page[2], 0x3000u);
  walk = translate(memory, paging, 0x400000).tables;
  ASSERT_EQ(walk.count, 4u);
  EXPECT_EQ(walk.page[3], 0x4000u);
  EXPECT_EQ(translate(memory, PagingState{}, 0x400000).tables.count, 0u);
}

}  // namespace
}  // namespace drvm::vmm::debug
