// Unit tests of the one number parser: whole numbers, sizes, seconds, guest RAM.
#include "cmdline/numbers.hpp"

#include <gtest/gtest.h>

namespace drvm::cmdline {
namespace {

TEST(Numbers, WholeNumbers) {
  EXPECT_EQ(parse_whole_number("0"), 0u);
  EXPECT_EQ(parse_whole_number("42"), 42u);
  EXPECT_EQ(parse_whole_number("18446744073709551615"), ~std::uint64_t{0});
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "0x10", "4k", "18446744073709551616"}) {
    EXPECT_EQ(parse_whole_number(bad), std::nullopt) << bad;
  }
}

TEST(Numbers, Sizes) {
  EXPECT_EQ(parse_size("4096", 1), 4096u);
  EXPECT_EQ(parse_size("64", kMiB), 64u << 20);
  EXPECT_EQ(parse_size("64M", 1), 64u << 20);
  EXPECT_EQ(parse_size("1G", 1), 1u << 30);
  EXPECT_EQ(parse_size("8k", kMiB), 8192u);
  EXPECT_THROW(parse_size("12Q", 1), NumberError);
  EXPECT_THROW(parse_size("", 1), NumberError);
  EXPECT_THROW(parse_size("M", 1), NumberError);
  EXPECT_THROW(parse_size("-1M", 1), NumberError);
  EXPECT_THROW(parse_size("99999999999999999999G", 1), NumberError);
  EXPECT_THROW(parse_size("17179869184G", 1), NumberError);  // 2^34 GiB overflows 64 bits
}

TEST(Numbers, Seconds) {
  EXPECT_DOUBLE_EQ(parse_seconds("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(parse_seconds("10"), 10);
  for (const char* bad : {"-1", "0", "1s", "", "inf", "nan"}) {
    EXPECT_THROW(parse_seconds(bad), NumberError) << bad;
  }
  try {
    parse_seconds("1s");
  } catch (const NumberError& error) {
    EXPECT_STREQ(error.what(), "'1s' is not a positive number of seconds; write e.g. 0.5 or 10");
  }
}

TEST(Numbers, GuestMemoryIsMiBWhenBareAsQemuAndManifests) {
  EXPECT_EQ(parse_guest_memory("64"), 64u << 20);
  EXPECT_EQ(parse_guest_memory("2"), 2u << 20);
  EXPECT_EQ(parse_guest_memory("3072"), 3ULL << 30);
  EXPECT_EQ(parse_guest_memory("3G"), 3ULL << 30);
  EXPECT_EQ(parse_guest_memory("4100K"), 4100u << 10);
  for (const char* bad : {"1", "3073", "4G", "2049K", "1M", "x"}) {
    EXPECT_THROW(parse_guest_memory(bad), NumberError) << bad;
  }
}

// drvm run --cpus and a manifest's `cpus`: 1 to 255 (xAPIC IDs).
TEST(Numbers, VcpuCountIsOneTo255) {
  EXPECT_EQ(parse_vcpu_count("1"), 1u);
  EXPECT_EQ(parse_vcpu_count("4"), 4u);
  EXPECT_EQ(parse_vcpu_count("255"), 255u);
  for (const char* bad : {"0", "256", "-1", "2.5", "", "x", "4 ", "99999999999999999999999"}) {
    EXPECT_THROW(parse_vcpu_count(bad), NumberError) << bad;
  }
  try {
    parse_vcpu_count("0");
    ADD_FAILURE() << "accepted 0";
  } catch (const NumberError& error) {
    EXPECT_STREQ(error.what(), "'0' is not a vCPU count; give a whole number from 1 to 255");
  }
}

}  // namespace
}  // namespace drvm::cmdline
