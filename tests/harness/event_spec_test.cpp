#include "harness/event_spec.hpp"

#include <gtest/gtest.h>

namespace drvm::harness {
namespace {

TEST(EventSpec, AcceptsTheIssue6Grammar) {
  for (const char* spec :
       {"mem:counter", "mem:counter:w", "mem:0x1000/8:rw", "mem:buf+16/4:r", "mem:main:x",
        "mem:counter:w,period=10", "mem:counter,pinned,exclusive,vcpu=1", "mem:4096"}) {
    EXPECT_EQ(event_spec_problem(spec), std::nullopt) << spec;
  }
}

TEST(EventSpec, NamesTheWrongPart) {
  const auto problem = [](const char* spec) { return event_spec_problem(spec).value_or(""); };
  EXPECT_NE(problem("counter:w").find("must start with 'mem:'"), std::string::npos);
  EXPECT_NE(problem("mem::w").find("'' in event"), std::string::npos);
  EXPECT_NE(problem("mem:x:wr").find("access 'wr'"), std::string::npos);
  EXPECT_NE(problem("mem:x/abc").find("length 'abc'"), std::string::npos);
  EXPECT_NE(problem("mem:x+y").find("offset 'y'"), std::string::npos);
  EXPECT_NE(problem("mem:1abc").find("address or a symbol"), std::string::npos);
  EXPECT_NE(problem("mem:x,period=").find("option 'period' needs a number"), std::string::npos);
  EXPECT_NE(problem("mem:x,sticky").find("unknown option 'sticky'"), std::string::npos);
  EXPECT_NE(problem("mem:x,").find("empty option"), std::string::npos);
}

}  // namespace
}  // namespace drvm::harness
