// Attributes, validation, access matching, DR6/DR7 encoding and error messages.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "bpcore/attributes.hpp"
#include "bpcore/dr_encoding.hpp"
#include "bpcore/result.hpp"

namespace drvm::bp {
namespace {

TEST(ErrorMessage, EveryErrorHasItsOwnMessage) {
  std::set<std::string> seen;
  for (Error e : {Error::kBadLength, Error::kMisaligned, Error::kExecuteLength,
                  Error::kNonCanonical, Error::kUnknownType, Error::kNoSpace, Error::kBadWeight,
                  Error::kBadVcpu, Error::kUnknownEvent}) {
    const std::string message(error_message(e));
    EXPECT_FALSE(message.empty());
    EXPECT_NE(message, "unknown error");
    EXPECT_TRUE(seen.insert(message).second) << message;
  }
}

TEST(Validate, AcceptsEveryLegalCombination) {
  for (BpType type : {BpType::kRead, BpType::kWrite, BpType::kReadWrite}) {
    for (std::uint32_t len : {1u, 2u, 4u, 8u}) {
      EXPECT_TRUE(validate({0x1000, len, type}).ok());
      EXPECT_TRUE(validate({0xffff'8000'0000'0000 + 8 * len, len, type}).ok());
    }
  }
  EXPECT_TRUE(validate({0x1003, 1, BpType::kExecute}).ok());
  EXPECT_TRUE(validate({0x0000'7fff'ffff'fff8, 8, BpType::kWrite}).ok());
}

TEST(Validate, RejectsEachBadInputWithItsError) {
  EXPECT_EQ(validate({0x1000, 1, BpType{0}}).error(), Error::kUnknownType);
  EXPECT_EQ(validate({0x1000, 1, BpType{5}}).error(), Error::kUnknownType);
  EXPECT_EQ(validate({0x1000, 1, BpType{8}}).error(), Error::kUnknownType);
  for (std::uint32_t len : {0u, 3u, 5u, 6u, 7u, 16u}) {
    EXPECT_EQ(validate({0x1000, len, BpType::kWrite}).error(), Error::kBadLength) << len;
  }
  for (std::uint32_t len : {2u, 4u, 8u}) {
    EXPECT_EQ(validate({0x1000, len, BpType::kExecute}).error(), Error::kExecuteLength);
  }
  EXPECT_EQ(validate({0x0000'8000'0000'0000, 1, BpType::kRead}).error(), Error::kNonCanonical);
  EXPECT_EQ(validate({0xffff'7fff'ffff'fff0, 8, BpType::kRead}).error(), Error::kNonCanonical);
  EXPECT_EQ(validate({0x1001, 2, BpType::kWrite}).error(), Error::kMisaligned);
  EXPECT_EQ(validate({0x1002, 4, BpType::kWrite}).error(), Error::kMisaligned);
  EXPECT_EQ(validate({0x1004, 8, BpType::kReadWrite}).error(), Error::kMisaligned);
}

TEST(Canonical, Boundaries) {
  EXPECT_TRUE(is_canonical(0));
  EXPECT_TRUE(is_canonical(0x0000'7fff'ffff'ffff));
  EXPECT_FALSE(is_canonical(0x0000'8000'0000'0000));
  EXPECT_FALSE(is_canonical(0xffff'7fff'ffff'ffff));
  EXPECT_TRUE(is_canonical(0xffff'8000'0000'0000));
  EXPECT_TRUE(is_canonical(~std::uint64_t{0}));
}

TEST(Matches, DataOverlapPerByte) {
  const BpAttr w{0x1000, 4, BpType::kWrite};
  EXPECT_TRUE(matches(w, 0x1000, 1, Access::kWrite));
  EXPECT_TRUE(matches(w, 0x1003, 1, Access::kWrite));
  EXPECT_FALSE(matches(w, 0x1004, 1, Access::kWrite));
  EXPECT_FALSE(matches(w, 0x0fff, 1, Access::kWrite));
  EXPECT_TRUE(matches(w, 0x0ffe, 4, Access::kWrite));   // last two bytes overlap
  EXPECT_TRUE(matches(w, 0x0ff8, 16, Access::kWrite));  // covers the whole range
  EXPECT_FALSE(matches(w, 0x0ff8, 8, Access::kWrite));
  EXPECT_FALSE(matches(w, 0x1000, 4, Access::kRead));
  EXPECT_FALSE(matches(w, 0x1000, 4, Access::kExecute));
  EXPECT_FALSE(matches(w, 0x1000, 0, Access::kWrite));
}

TEST(Matches, TypesAndReadFilter) {
  const BpAttr rw{0x2000, 8, BpType::kReadWrite};
  EXPECT_TRUE(matches(rw, 0x2007, 1, Access::kRead));
  EXPECT_TRUE(matches(rw, 0x2007, 1, Access::kWrite));
  const BpAttr r{0x2000, 8, BpType::kRead};
  EXPECT_TRUE(matches(r, 0x2000, 8, Access::kRead));
  EXPECT_FALSE(matches(r, 0x2000, 8, Access::kWrite));  // the read filter
  EXPECT_TRUE(needs_read_filter(BpType::kRead));
  EXPECT_FALSE(needs_read_filter(BpType::kReadWrite));
  const BpAttr x{0x3001, 1, BpType::kExecute};
  EXPECT_TRUE(matches(x, 0x3001, 3, Access::kExecute));
  EXPECT_FALSE(matches(x, 0x3000, 3, Access::kExecute));  // only the first byte counts
  EXPECT_FALSE(matches(x, 0x3001, 1, Access::kRead));
}

TEST(Matches, AccessWrappingTheAddressSpace) {
  const BpAttr low{0x0, 2, BpType::kWrite};
  EXPECT_TRUE(matches(low, ~std::uint64_t{0}, 2, Access::kWrite));
  const BpAttr high{0xffff'ffff'ffff'fff8, 8, BpType::kWrite};
  EXPECT_TRUE(matches(high, ~std::uint64_t{0}, 4, Access::kWrite));
  const BpAttr mid{0x1000, 8, BpType::kWrite};
  EXPECT_FALSE(matches(mid, ~std::uint64_t{0}, 4, Access::kWrite));
}

TEST(DrEncoding, LenFieldValues) {
  EXPECT_EQ(encode_len(1), 0b00);
  EXPECT_EQ(encode_len(2), 0b01);
  EXPECT_EQ(encode_len(8), 0b10);
  EXPECT_EQ(encode_len(4), 0b11);
  for (std::uint32_t len : {1u, 2u, 4u, 8u}) EXPECT_EQ(decode_len(encode_len(len)), len);
}

TEST(DrEncoding, RwFieldValues) {
  EXPECT_EQ(encode_rw(BpType::kExecute), DrRw::kExecute);
  EXPECT_EQ(encode_rw(BpType::kWrite), DrRw::kWrite);
  EXPECT_EQ(encode_rw(BpType::kReadWrite), DrRw::kReadWrite);
  EXPECT_EQ(encode_rw(BpType::kRead), DrRw::kReadWrite);  // no read-only condition on x86
}

TEST(DrEncoding, Dr7SlotBits) {
  EXPECT_EQ(encode_dr7_slot(0, {0, 1, BpType::kExecute}), 0x2u);
  EXPECT_EQ(encode_dr7_slot(1, {0, 4, BpType::kWrite}), (0x8u | (0b1101u << 20)));
  EXPECT_EQ(encode_dr7_slot(3, {0, 8, BpType::kReadWrite}), (0x80u | (0b1011u << 28)));
  EXPECT_EQ(encode_dr7_slot(2, {0, 2, BpType::kRead}), (0x20u | (0b0111u << 24)));
  for (unsigned n = 0; n < 4; ++n) {
    const std::uint64_t v = encode_dr7_slot(n, {0, 4, BpType::kReadWrite}) | dr7::l(n);
    EXPECT_EQ(v & ~dr7::slot_mask(n), 0u);
    const Dr7Slot d = decode_dr7_slot(v, n);
    EXPECT_TRUE(d.local);
    EXPECT_TRUE(d.global);
    EXPECT_EQ(d.rw, DrRw::kReadWrite);
    EXPECT_EQ(d.len_bytes(), 4u);
    for (unsigned other = 0; other < 4; ++other) {
      if (other != n) {
        EXPECT_FALSE(decode_dr7_slot(v, other).enabled());
      }
    }
  }
}

TEST(DrEncoding, ArchitecturalReadBack) {
  EXPECT_EQ(dr6::read_value(0), 0xffff0ff0u);
  EXPECT_EQ(dr6::read_value(~std::uint64_t{0}), 0xffffeffful);  // bit 12 and upper half read 0
  EXPECT_EQ(dr6::read_value(dr6::kBs | dr6::b(2)), 0xffff4ff4u);
  EXPECT_EQ(dr7::read_value(0), 0x400u);
  EXPECT_EQ(dr7::read_value(~std::uint64_t{0}), 0xffff27ffu);  // 11, 12, 14, 15 read 0
  EXPECT_EQ(slot_mask_from_dr6(0xffff0ff5), 0x5u);
  EXPECT_EQ(slot_mask_from_dr6(dr6::kBs | dr6::kFixedOnes), 0u);
}

TEST(ResultType, CarriesValueOrError) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value(), 7);
  Result<int> bad(Error::kNoSpace);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), Error::kNoSpace);
  Result<void> none;
  EXPECT_TRUE(none.ok());
  Result<void> failed(Error::kBadVcpu);
  EXPECT_FALSE(static_cast<bool>(failed));
  EXPECT_EQ(failed.error(), Error::kBadVcpu);
}

}  // namespace
}  // namespace drvm::bp
