// Decoding of the software-interrupt instructions drvm completes for KVM's emulator. Delivery
// itself is covered end to end by selftest.elf's int3 case under drvm (tests/guestfw).
#include "vmm/x86/software_interrupts.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace drvm::vmm {
namespace {

TEST(SoftwareInterruptDecode, Int3IsVectorThreeOneByte) {
  const std::array<std::uint8_t, 2> bytes{0xcc, 0x90};
  const auto decoded = decode_software_interrupt(bytes.data(), bytes.size());
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->vector, 3);
  EXPECT_EQ(decoded->length, 1);
}

TEST(SoftwareInterruptDecode, IntNCarriesItsVector) {
  const std::array<std::uint8_t, 2> bytes{0xcd, 0x80};
  const auto decoded = decode_software_interrupt(bytes.data(), bytes.size());
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->vector, 0x80);
  EXPECT_EQ(decoded->length, 2);
}

TEST(SoftwareInterruptDecode, TruncatedIntNIsNotDecoded) {
  const std::array<std::uint8_t, 1> bytes{0xcd};
  EXPECT_FALSE(decode_software_interrupt(bytes.data(), bytes.size()).has_value());
}

TEST(SoftwareInterruptDecode, OtherInstructionsAreNotSoftwareInterrupts) {
  for (const std::uint8_t opcode : {0x90, 0x0f, 0xf1, 0xce, 0x00}) {
    const std::array<std::uint8_t, 2> bytes{opcode, 0x03};
    EXPECT_FALSE(decode_software_interrupt(bytes.data(), bytes.size()).has_value())
        << "opcode " << int{opcode};
  }
  EXPECT_FALSE(decode_software_interrupt(nullptr, 0).has_value());
}

}  // namespace
}  // namespace drvm::vmm
