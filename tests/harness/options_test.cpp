#include "harness/options.hpp"

#include <gtest/gtest.h>

namespace drvm::harness {
namespace {

std::variant<Options, std::string> parse(std::vector<std::string_view> args) {
  return parse_options(args);
}

TEST(Options, EveryFlag) {
  const auto parsed =
      parse({"a.toml", "-j", "3", "--junit", "out.xml", "--tap", "--filter", "boot*",
             "--filter=dr/*", "--shard", "2/4", "--update-golden", "--verbose", "b.toml",
             "--runner", "/bin/fake", "--kill-margin", "250"});
  ASSERT_TRUE(std::holds_alternative<Options>(parsed)) << std::get<std::string>(parsed);
  const Options& options = std::get<Options>(parsed);
  EXPECT_EQ(options.manifests, (std::vector<std::filesystem::path>{"a.toml", "b.toml"}));
  EXPECT_EQ(options.jobs, 3u);
  EXPECT_EQ(options.junit, std::filesystem::path("out.xml"));
  EXPECT_TRUE(options.tap);
  EXPECT_EQ(options.filters, (std::vector<std::string>{"boot*", "dr/*"}));
  EXPECT_EQ(options.shard.index, 2u);
  EXPECT_EQ(options.shard.count, 4u);
  EXPECT_TRUE(options.update_golden);
  EXPECT_TRUE(options.verbose);
  EXPECT_EQ(options.runner, std::filesystem::path("/bin/fake"));
  EXPECT_EQ(options.kill_margin, std::chrono::milliseconds(250));
}

TEST(Options, Defaults) {
  const Options options = std::get<Options>(parse({"-j4", "a.toml"}));
  EXPECT_EQ(options.jobs, 4u);
  const Options defaults = std::get<Options>(parse({"a.toml"}));
  EXPECT_GE(defaults.jobs, 1u);
  EXPECT_FALSE(defaults.junit);
  EXPECT_FALSE(defaults.tap);
  EXPECT_EQ(defaults.shard.count, 1u);
  EXPECT_TRUE(std::get<Options>(parse({"--help"})).help);
  EXPECT_TRUE(std::get<Options>(parse({"-h"})).help);
}

TEST(Options, Errors) {
  const auto error = [](std::vector<std::string_view> args) {
    const auto parsed = parse_options(args);
    return std::holds_alternative<std::string>(parsed) ? std::get<std::string>(parsed) : "";
  };
  EXPECT_EQ(error({}),
            "test: no manifest given; usage: drvm test MANIFEST... [options] (see drvm test "
            "--help)");
  EXPECT_EQ(error({"a.toml", "-j", "0"}),
            "test: --jobs: '0' is not a number of parallel cases; give 1 to 4096, e.g. -j 4");
  EXPECT_EQ(error({"a.toml", "-j", "x"}),
            "test: --jobs: 'x' is not a number of parallel cases; give 1 to 4096, e.g. -j 4");
  EXPECT_EQ(error({"a.toml", "-j"}), "test: option '--jobs' needs a value; write '--jobs N'");
  EXPECT_EQ(error({"a.toml", "--shard", "5/4"}),
            "test: --shard: '5/4' is not I/N with 1 <= I <= N; write e.g. --shard 2/4");
  EXPECT_EQ(error({"a.toml", "--junit"}),
            "test: option '--junit' needs a value; write '--junit FILE'");
  EXPECT_EQ(error({"a.toml", "--frobnicate"}),
            "test: unknown option '--frobnicate'; run 'drvm test --help' for the list");
  EXPECT_EQ(error({"a.toml", "--tap=yes"}),
            "test: option '--tap' takes no value; write just '--tap'");
  EXPECT_EQ(error({"a.toml", "--filter", ""}),
            "test: --filter: empty pattern; give a glob: CASE or SUITE/CASE");
  EXPECT_EQ(error({"a.toml", "--kill-margin", "-5"}),
            "test: --kill-margin: '-5' is not a number of milliseconds; write e.g. 250");
}

}  // namespace
}  // namespace drvm::harness
