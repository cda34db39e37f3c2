// Unit tests of the CLI option parser and the size/seconds parsers.
#include <gtest/gtest.h>

#include "options.hpp"

namespace drvm::cli {
namespace {

TEST(OptionsTest, ParsesFlagsValuesAndPositionals) {
  bool trace = false;
  std::string mem;
  OptionParser parser("run");
  parser.add_flag("--trace-io", &trace, "");
  parser.add_value(
      "--mem", "SIZE", [&mem](std::string_view v) { mem = v; }, "");
  const std::string_view args[] = {"a.elf", "--mem", "64M", "--trace-io", "--", "--mem"};
  const auto positionals = parser.parse(args);
  EXPECT_TRUE(trace);
  EXPECT_EQ(mem, "64M");
  ASSERT_EQ(positionals.size(), 2u);
  EXPECT_EQ(positionals[1], "--mem");
  const std::string_view equals[] = {"--mem=1G"};
  parser.parse(equals);
  EXPECT_EQ(mem, "1G");
}

TEST(OptionsTest, RejectsUnknownAndMissingValues) {
  OptionParser parser("run");
  parser.add_value(
      "--mem", "SIZE", [](std::string_view) {}, "");
  const std::string_view unknown[] = {"--nope"};
  EXPECT_THROW(parser.parse(unknown), UsageError);
  const std::string_view missing[] = {"--mem"};
  EXPECT_THROW(parser.parse(missing), UsageError);
}

TEST(OptionsTest, Sizes) {
  EXPECT_EQ(parse_size("--mem", "4096"), 4096u);
  EXPECT_EQ(parse_size("--mem", "64M"), 64u << 20);
  EXPECT_EQ(parse_size("--mem", "1G"), 1u << 30);
  EXPECT_EQ(parse_size("--mem", "8k"), 8192u);
  EXPECT_THROW(parse_size("--mem", "12Q"), UsageError);
  EXPECT_THROW(parse_size("--mem", ""), UsageError);
  EXPECT_THROW(parse_size("--mem", "99999999999999999999G"), UsageError);
}

TEST(OptionsTest, Seconds) {
  EXPECT_DOUBLE_EQ(parse_seconds("--timeout", "0.5"), 0.5);
  EXPECT_THROW(parse_seconds("--timeout", "-1"), UsageError);
  EXPECT_THROW(parse_seconds("--timeout", "1s"), UsageError);
}

}  // namespace
}  // namespace drvm::cli
