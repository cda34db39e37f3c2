// `--event` syntax: what each part parses to, and one clear message for every way a spec can be
// wrong (the message names the bad part and says how to fix it).
#include "bpcore/event_spec.hpp"

#include <gtest/gtest.h>

namespace drvm::bp {
namespace {

TEST(EventSpec, SymbolAloneDefaultsToReadWriteFlexibleOnEveryVcpu) {
  const EventRequest r = parse_event_spec("mem:cw_counter");
  EXPECT_EQ(r.text, "mem:cw_counter");
  EXPECT_EQ(r.symbol, "cw_counter");
  EXPECT_EQ(r.offset, 0u);
  EXPECT_FALSE(r.length.has_value());
  EXPECT_EQ(r.type, bp::BpType::kReadWrite);
  EXPECT_EQ(r.period, 0u);
  EXPECT_FALSE(r.pinned);
  EXPECT_FALSE(r.exclusive);
  EXPECT_FALSE(r.vcpu.has_value());
}

TEST(EventSpec, AddressWithLengthAndType) {
  const EventRequest r = parse_event_spec("mem:0x10a000/4:w");
  EXPECT_TRUE(r.symbol.empty());
  EXPECT_EQ(r.address, 0x10a000u);
  EXPECT_EQ(r.length, 4u);
  EXPECT_EQ(r.type, bp::BpType::kWrite);
  EXPECT_EQ(parse_event_spec("mem:1089536/8:r").address, 1089536u);
}

TEST(EventSpec, EveryPartAndOption) {
  const EventRequest r =
      parse_event_spec("mem:cw_buffer+0x10/8:r,period=100,pinned,exclusive,vcpu=0");
  EXPECT_EQ(r.symbol, "cw_buffer");
  EXPECT_EQ(r.offset, 0x10u);
  EXPECT_EQ(r.length, 8u);
  EXPECT_EQ(r.type, bp::BpType::kRead);
  EXPECT_EQ(r.period, 100u);
  EXPECT_TRUE(r.pinned);
  EXPECT_TRUE(r.exclusive);
  EXPECT_EQ(r.vcpu, 0u);
  EXPECT_EQ(parse_event_spec("mem:a.b$c+8").offset, 8u);
}

TEST(EventSpec, ExecuteHasLengthOne) {
  const EventRequest r = parse_event_spec("mem:cw_tick:x");
  EXPECT_EQ(r.type, bp::BpType::kExecute);
  EXPECT_EQ(r.length, 1u);
  EXPECT_EQ(parse_event_spec("mem:cw_tick/1:x").length, 1u);
}

TEST(EventSpec, TypeNames) {
  EXPECT_EQ(type_name(bp::BpType::kRead), "r");
  EXPECT_EQ(type_name(bp::BpType::kWrite), "w");
  EXPECT_EQ(type_name(bp::BpType::kReadWrite), "rw");
  EXPECT_EQ(type_name(bp::BpType::kExecute), "x");
}

struct BadSpec {
  const char* spec;
  const char* message;  // the whole "cause; fix" line
};

class BadEventSpec : public testing::TestWithParam<BadSpec> {};

TEST_P(BadEventSpec, IsRefusedWithOneLineNamingThePart) {
  const BadSpec& bad = GetParam();
  try {
    (void)parse_event_spec(bad.spec);
    FAIL() << bad.spec << " was accepted";
  } catch (const SpecError& error) {
    EXPECT_EQ(std::string(error.what()), bad.message) << bad.spec;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllWays, BadEventSpec,
    testing::Values(
        BadSpec{"cw_counter",
                "'cw_counter' is not an event type drvm knows; only memory events exist: "
                "mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,OPTION...]"},
        BadSpec{"cpu:cycles",
                "'cpu' is not an event type drvm knows; only memory events exist: "
                "mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,OPTION...]"},
        BadSpec{"mem:",
                "no address or symbol after 'mem:'; write "
                "mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,OPTION...]"},
        BadSpec{"mem::w",
                "no address or symbol after 'mem:'; write "
                "mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,OPTION...]"},
        BadSpec{"mem:12zz/4",
                "address '12zz' is not a number; write it in decimal or as 0x-prefixed hex"},
        BadSpec{"mem:0x/4",
                "address '0x' is not a number; write it in decimal or as 0x-prefixed hex"},
        BadSpec{"mem:a-b",
                "'a-b' is neither an address nor a symbol name; symbols use letters, digits, '_', "
                "'.' and '$', addresses are decimal or 0x-prefixed hex"},
        BadSpec{"mem:x+zz",
                "offset 'zz' is not a number; write +N or +0xN right after the address or symbol"},
        BadSpec{"mem:x+",
                "offset '' is not a number; write +N or +0xN right after the address or symbol"},
        BadSpec{
            "mem:x/3",
            "length '3' is not 1, 2, 4 or 8 bytes; watch at most 8 aligned bytes per event (/1, "
            "/2, /4 or /8) and add more events for a larger object"},
        BadSpec{"mem:x/16",
                "length '16' is not 1, 2, 4 or 8 bytes; watch at most 8 aligned bytes per event "
                "(/1, /2, /4 or /8) and add more events for a larger object"},
        BadSpec{"mem:x/four:w",
                "length 'four' is not 1, 2, 4 or 8 bytes; watch at most 8 aligned bytes per event "
                "(/1, /2, /4 or /8) and add more events for a larger object"},
        BadSpec{"mem:x:q",
                "access type 'q' is not one of r, w, rw, x; end the spec with :r, :w, "
                ":rw or :x (after /LEN)"},
        BadSpec{"mem:x:",
                "access type '' is not one of r, w, rw, x; end the spec with :r, :w, "
                ":rw or :x (after /LEN)"},
        BadSpec{"mem:x:w/4",
                "access type 'w/4' is not one of r, w, rw, x; end the spec with :r, "
                ":w, :rw or :x (after /LEN)"},
        BadSpec{"mem:f/4:x",
                "an execute (:x) event watches one instruction start, not 4 bytes; drop /4"},
        BadSpec{"mem:x,period=0",
                "option period='0' needs a number of at least 1; for example period=100"},
        BadSpec{"mem:x,period=ten",
                "option period='ten' needs a number of at least 1; for example period=100"},
        BadSpec{"mem:x,vcpu=-1",
                "option vcpu='-1' needs a number of at least 0; for example vcpu=0"},
        BadSpec{"mem:x,vcpu=70000",
                "option vcpu=70000 is not a vCPU index; give vcpu=0 .. vcpu=N-1"},
        BadSpec{"mem:x,period",
                "unknown option 'period'; the options are period=N, pinned, "
                "exclusive and vcpu=N"},
        BadSpec{"mem:x,bogus",
                "unknown option 'bogus'; the options are period=N, pinned, exclusive and vcpu=N"},
        BadSpec{"mem:x,pinned=1",
                "unknown option 'pinned=1'; the options are period=N, pinned, "
                "exclusive and vcpu=N"},
        BadSpec{"mem:x,pinned,pinned", "option 'pinned' is given twice; keep one"},
        BadSpec{"mem:x,period=2,period=3", "option 'period' is given twice; keep one"},
        BadSpec{"mem:x,", "empty option between commas; remove the extra ','"},
        BadSpec{"mem:x,,pinned", "empty option between commas; remove the extra ','"}));

}  // namespace
}  // namespace drvm::bp
