// Decoders of the debug engines: MOV DR / MOV CR by hand, memory accesses with Zydis.
#include <gtest/gtest.h>

#include <array>

#include "vmm/debug/access_decoder.hpp"
#include "vmm/debug/instruction_decoding.hpp"

namespace drvm::vmm::debug {
namespace {

TEST(ControlMoveDecoding, MovToAndFromDebugRegisters) {
  const std::uint8_t to_dr7[] = {0x0f, 0x23, 0xf8};  // mov %rax, %db7
  auto move = decode_control_move(to_dr7, sizeof to_dr7, true);
  ASSERT_TRUE(move);
  EXPECT_EQ(move->kind, ControlMove::kToDr);
  EXPECT_EQ(move->special, 7u);
  EXPECT_EQ(move->gpr, 0u);
  EXPECT_EQ(move->length, 3u);
  const std::uint8_t from_dr6_r13[] = {0x41, 0x0f, 0x21, 0xf5};  // mov %db6, %r13
  move = decode_control_move(from_dr6_r13, sizeof from_dr6_r13, true);
  ASSERT_TRUE(move);
  EXPECT_EQ(move->kind, ControlMove::kFromDr);
  EXPECT_EQ(move->special, 6u);
  EXPECT_EQ(move->gpr, 13u);
  EXPECT_EQ(move->length, 4u);
  const std::uint8_t dr9[] = {0x44, 0x0f, 0x23, 0xc8};  // REX.R: DR9 (#UD)
  move = decode_control_move(dr9, sizeof dr9, true);
  ASSERT_TRUE(move);
  EXPECT_EQ(move->special, 9u);
  const std::uint8_t not_a_move[] = {0x0f, 0x20, 0xd8};  // mov %cr3, %rax
  EXPECT_FALSE(decode_control_move(not_a_move, sizeof not_a_move, true));
}

kvm_sregs long_mode() {
  kvm_sregs sregs{};
  sregs.efer = 1u << 10;
  sregs.cs.l = 1;
  sregs.cr0 = 1;
  return sregs;
}

TEST(AccessDecoding, PushWritesBelowTheStackPointer) {
  const std::uint8_t push_rax[] = {0x50};
  kvm_regs regs{};
  regs.rsp = 0x8000;
  const auto decoded = DecodedAccesses::decode(push_rax, regs, long_mode());
  ASSERT_TRUE(decoded.valid());
  std::array<MemoryAccess, DecodedAccesses::kMax> out{};
  kvm_regs after = regs;
  after.rsp -= 8;
  after.rip += 1;
  ASSERT_EQ(decoded.resolve(regs, after, out), 1u);
  EXPECT_EQ(out[0].type, bp::Access::kWrite);
  EXPECT_EQ(out[0].linear, 0x7ff8u);
  EXPECT_EQ(out[0].size, 8u);
}

TEST(AccessDecoding, RepMovsCoversTheIterationsThatRan) {
  const std::uint8_t rep_movsq[] = {0xf3, 0x48, 0xa5};
  kvm_regs regs{};
  regs.rsi = 0x1000;
  regs.rdi = 0x2000;
  regs.rcx = 10;
  const auto decoded = DecodedAccesses::decode(rep_movsq, regs, long_mode());
  ASSERT_TRUE(decoded.valid());
  kvm_regs after = regs;
  after.rcx = 6;  // four iterations ran, RIP stays at the instruction
  EXPECT_TRUE(decoded.retired(regs, after));
  std::array<MemoryAccess, DecodedAccesses::kMax> out{};
  const std::size_t n = decoded.resolve(regs, after, out);
  ASSERT_EQ(n, 2u);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(out[i].size, 32u);
    EXPECT_EQ(out[i].linear, out[i].type == bp::Access::kRead ? 0x1000u : 0x2000u);
  }
}

TEST(AccessDecoding, ReadModifyWriteIsBoth) {
  const std::uint8_t add_mem[] = {0x48, 0x01, 0x43, 0x10};  // add %rax, 0x10(%rbx)
  kvm_regs regs{};
  regs.rbx = 0x5000;
  const auto decoded = DecodedAccesses::decode(add_mem, regs, long_mode());
  kvm_regs after = regs;
  after.rip += 4;
  std::array<MemoryAccess, DecodedAccesses::kMax> out{};
  ASSERT_EQ(decoded.resolve(regs, after, out), 2u);
  EXPECT_EQ(out[0].linear, 0x5010u);
  EXPECT_NE(out[0].type, out[1].type);
}

}  // namespace
}  // namespace drvm::vmm::debug
