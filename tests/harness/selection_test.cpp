#include "harness/selection.hpp"

#include <gtest/gtest.h>

#include <map>

namespace drvm::harness {
namespace {

std::vector<Suite> make_suites(std::size_t first, std::size_t second) {
  std::vector<Suite> suites(2);
  suites[0].name = "boot";
  suites[1].name = "dr";
  for (std::size_t i = 0; i < first; ++i)
    suites[0].cases.emplace_back().name = "b" + std::to_string(i);
  for (std::size_t i = 0; i < second; ++i)
    suites[1].cases.emplace_back().name = "d" + std::to_string(i);
  return suites;
}

TEST(Shard, ParsesIOfN) {
  EXPECT_EQ(parse_shard("1/1")->index, 1u);
  EXPECT_EQ(parse_shard("3/4")->count, 4u);
  for (const char* bad : {"0/4", "5/4", "1/0", "1", "/4", "a/b", "1/4x", "-1/4", ""}) {
    EXPECT_FALSE(parse_shard(bad)) << bad;
  }
}

TEST(Shard, EveryCaseRunsInExactlyOneShard) {
  for (const std::size_t total : {0u, 1u, 7u, 10u, 33u}) {
    const auto suites = make_suites(total / 2, total - total / 2);
    const auto all = filter_cases(suites, {});
    ASSERT_EQ(all.size(), total);
    for (const unsigned n : {1u, 2u, 3u, 4u, 8u, 50u}) {
      std::map<const Case*, int> seen;
      std::size_t largest = 0, smallest = SIZE_MAX;
      for (unsigned i = 1; i <= n; ++i) {
        const auto shard = shard_cases(all, {i, n});
        largest = std::max(largest, shard.size());
        smallest = std::min(smallest, shard.size());
        for (const auto& c : shard) ++seen[c.test];
      }
      EXPECT_EQ(seen.size(), total) << total << " cases, " << n << " shards";
      for (const auto& [c, times] : seen) EXPECT_EQ(times, 1) << c->name;
      EXPECT_LE(largest - smallest, 1u) << "shards are balanced within one case";
    }
  }
}

TEST(Shard, PartitionIsRoundRobinInManifestOrder) {
  const auto suites = make_suites(3, 2);
  const auto shard = shard_cases(filter_cases(suites, {}), {2, 2});
  ASSERT_EQ(shard.size(), 2u);
  EXPECT_EQ(shard[0].full_name(), "boot/b1");
  EXPECT_EQ(shard[1].full_name(), "dr/d0");
}

TEST(Filter, GlobsOnCaseOrSuiteSlashCase) {
  const auto suites = make_suites(12, 3);
  const auto names = [&](std::vector<std::string> filters) {
    std::vector<std::string> out;
    for (const auto& c : filter_cases(suites, filters)) out.push_back(c.full_name());
    return out;
  };
  EXPECT_EQ(names({"b1?"}), (std::vector<std::string>{"boot/b10", "boot/b11"}));
  EXPECT_EQ(names({"dr/*"}), (std::vector<std::string>{"dr/d0", "dr/d1", "dr/d2"}));
  EXPECT_EQ(names({"*/d1", "b2"}), (std::vector<std::string>{"boot/b2", "dr/d1"}));
  EXPECT_EQ(names({"b[0-1]"}), (std::vector<std::string>{"boot/b0", "boot/b1"}));
  EXPECT_TRUE(names({"nothing"}).empty());
  EXPECT_EQ(names({}).size(), 15u);
}

}  // namespace
}  // namespace drvm::harness
