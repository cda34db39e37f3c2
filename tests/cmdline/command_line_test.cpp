// Unit tests of the subcommands' command line (CLI11 underneath): flags, values, positionals,
// command-line order, the project's one-line errors, and the wrapped help.
#include "cmdline/command_line.hpp"

#include <gtest/gtest.h>

namespace drvm::cmdline {
namespace {

std::string error_of(CommandLine& line, std::vector<std::string_view> args) {
  try {
    (void)line.parse(args);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "accepted";
}

TEST(CommandLine, ParsesFlagsValuesAndPositionals) {
  bool trace = false;
  std::string mem;
  CommandLine line("run");
  line.add_flag("--trace-io", &trace, "");
  line.add_value(
      "--mem", "SIZE", [&mem](const std::string& v) { mem = v; }, "");
  const std::vector<std::string_view> args = {"a.elf", "--mem", "64M", "--trace-io", "--", "--mem"};
  const auto positionals = line.parse(args);
  EXPECT_TRUE(trace);
  EXPECT_EQ(mem, "64M");
  ASSERT_EQ(positionals.size(), 2u);
  EXPECT_EQ(positionals[0], "a.elf");
  EXPECT_EQ(positionals[1], "--mem");
  const std::vector<std::string_view> equals = {"--mem=1G"};
  EXPECT_TRUE(line.parse(equals).empty());
  EXPECT_EQ(mem, "1G");
}

TEST(CommandLine, ValuesReachTheirSettersInCommandLineOrder) {
  std::vector<std::string> seen;
  CommandLine line("run");
  line.add_value(
      "--event", "SPEC", [&](const std::string& v) { seen.push_back("e:" + v); }, "");
  line.add_value(
      "--mem", "SIZE", [&](const std::string& v) { seen.push_back("m:" + v); }, "");
  const std::vector<std::string_view> args = {"--mem", "1",       "--event", "a",
                                              "image", "--mem=2", "--event", "b"};
  EXPECT_EQ(line.parse(args), (std::vector<std::string>{"image"}));
  EXPECT_EQ(seen, (std::vector<std::string>{"m:1", "e:a", "m:2", "e:b"}));
}

TEST(CommandLine, ShortSpellingsAndValuesThatLookLikeOptions) {
  std::string jobs;
  std::string cmdline;
  bool verbose = false;
  CommandLine line("test");
  line.add_value(
      "-j,--jobs", "N", [&](const std::string& v) { jobs = v; }, "");
  line.add_value(
      "--cmdline", "STR", [&](const std::string& v) { cmdline = v; }, "");
  line.add_flag("-v,--verbose", &verbose, "");
  const std::vector<std::string_view> args = {"-j4", "-v", "--cmdline", "-x y", "-"};
  EXPECT_EQ(line.parse(args), (std::vector<std::string>{"-"}));
  EXPECT_EQ(jobs, "4");
  EXPECT_EQ(cmdline, "-x y");
  EXPECT_TRUE(verbose);
}

TEST(CommandLine, ErrorsAreOneLineInTheProjectsWords) {
  bool tap = false;
  CommandLine line("test");
  line.add_value(
      "-j,--jobs", "N", [](const std::string&) {}, "");
  line.add_flag("--tap", &tap, "");
  EXPECT_EQ(error_of(line, {"--nope"}),
            "test: unknown option '--nope'; run 'drvm test --help' for the list");
  EXPECT_EQ(error_of(line, {"a", "--nope=3"}),
            "test: unknown option '--nope'; run 'drvm test --help' for the list");
  EXPECT_EQ(error_of(line, {"--jobs"}), "test: option '--jobs' needs a value; write '--jobs N'");
  EXPECT_EQ(error_of(line, {"a", "-j"}), "test: option '--jobs' needs a value; write '--jobs N'");
  // Not the next argument: "--jobs=" says its value is empty.
  EXPECT_EQ(error_of(line, {"--jobs=", "--tap"}),
            "test: option '--jobs' needs a value; write '--jobs N'");
  EXPECT_EQ(error_of(line, {"--tap=yes"}),
            "test: option '--tap' takes no value; write just '--tap'");
}

TEST(CommandLine, SetterErrorsPassThrough) {
  CommandLine line("run");
  line.add_value(
      "--mem", "SIZE", [](const std::string& v) { throw UsageError("run: --mem: bad " + v); }, "");
  EXPECT_EQ(error_of(line, {"--mem", "x"}), "run: --mem: bad x");
}

TEST(CommandLine, HelpIsWrappedAtOneHundredColumnsAndHidesInternalOptions) {
  bool flag = false;
  CommandLine line("run");
  line.add_flag("-v,--verbose", &flag, "short help");
  line.add_value(
      "--a-very-long-option-name", "METAVAR", [](const std::string&) {},
      std::string(30, 'x') + " " + std::string(40, 'y') + " " + std::string(40, 'z'));
  line.add_value(
      "--internal", "X", [](const std::string&) {}, "");
  const std::string help = line.option_help();
  EXPECT_NE(help.find("  -v, --verbose          short help\n"), std::string::npos) << help;
  EXPECT_EQ(help.find("--internal"), std::string::npos) << help;
  std::size_t start = 0;
  int lines = 0;
  while (start < help.size()) {
    const std::size_t end = help.find('\n', start);
    EXPECT_LE(end - start, kHelpWidth) << help.substr(start, end - start);
    start = end + 1;
    ++lines;
  }
  EXPECT_EQ(lines, 4) << help;  // the short one; the long name alone, then two wrapped lines
}

}  // namespace
}  // namespace drvm::cmdline
