// The --stat table and JSON: scaling arithmetic, and the JSON parsed back field by field (the
// schema docs/events-guide.md documents and `drvm test` relies on).
#include "vmm/session/stat_report.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include "harness/property_tree_json.hpp"

namespace drvm::vmm::session {
namespace {

EventStat event(std::string spec, std::uint64_t count, std::uint64_t enabled,
                std::uint64_t running) {
  EventStat e;
  e.spec = std::move(spec);
  e.location = "cw_counter";
  e.address = 0x10a000;
  e.length = 4;
  e.type = bp::BpType::kWrite;
  e.count = count;
  e.time_enabled_ns = enabled;
  e.time_running_ns = running;
  e.per_vcpu = {count};
  return e;
}

StatReport sample_report() {
  StatReport report;
  report.image = "countwork.elf";
  report.slots = 4;
  report.vcpus = 1;
  report.elapsed_ns = 2'000'000;
  report.vcpu_time_ns = 1'000'000;
  report.rotation_interval_ns = 4'000'000;
  report.events.push_back(event("mem:cw_counter:w", 200, 1'000'000, 1'000'000));
  report.events.push_back(event("mem:cw_mux0:w,period=10", 250, 1'000'000, 400'000));
  report.events.back().period = 10;
  report.events.back().samples = 25;
  report.events.push_back(event("mem:\"odd\\name\"", 0, 1'000'000, 0));
  return report;
}

TEST(StatReport, ScalesOnlyMultiplexedCounts) {
  const StatReport report = sample_report();
  EXPECT_FALSE(report.events[0].multiplexed());
  EXPECT_EQ(report.events[0].scaled(), 200u);
  EXPECT_DOUBLE_EQ(report.events[0].running_percent(), 100.0);
  EXPECT_TRUE(report.events[1].multiplexed());
  EXPECT_EQ(report.events[1].scaled(), 625u);  // 250 * 1.0 / 0.4
  EXPECT_DOUBLE_EQ(report.events[1].running_percent(), 40.0);
  EXPECT_FALSE(report.events[2].counted());
  EXPECT_EQ(report.events[2].scaled(), 0u);
  EXPECT_EQ(report.vcpu_total(0), 450u);

  // count * enabled is 2^100: the arithmetic must not overflow.
  const EventStat huge = event("x", 1ULL << 40, 1ULL << 60, 1ULL << 59);
  EXPECT_EQ(huge.scaled(), 1ULL << 41);
}

TEST(StatReport, TableHasOneLinePerEventAndPerVcpuTotals) {
  const std::string table = format_stat_table(sample_report(), "drvm: ");
  EXPECT_EQ(table,
            "drvm: stat for countwork.elf: 1 vCPU, 4 slots, 0.002 s elapsed, 0.001 s vCPU time\n"
            "drvm:            count   enabled ms   running ms            scaled  running  event\n"
            "drvm:              200         1.00         1.00                 -   100.0%  "
            "mem:cw_counter:w\n"
            "drvm:              250         1.00         0.40               625    40.0%  "
            "mem:cw_mux0:w,period=10  (25 samples, period 10)\n"
            "drvm:                0         1.00         0.00     <not counted>     0.0%  "
            "mem:\"odd\\name\"\n"
            "drvm: vCPU 0: 450 hits\n");
}

TEST(StatReport, TableShowsPerVcpuCountsWithSeveralVcpus) {
  StatReport report = sample_report();
  report.vcpus = 2;
  report.events.resize(1);
  report.events[0].per_vcpu = {150, 50};
  const std::string table = format_stat_table(report, "");
  EXPECT_NE(table.find("mem:cw_counter:w  [vCPU 0: 150, vCPU 1: 50]\n"), std::string::npos);
  EXPECT_NE(table.find("\nvCPU 0: 150 hits\nvCPU 1: 50 hits\n"), std::string::npos);
}

TEST(StatReport, JsonParsesBackWithEveryField) {
  const std::string json = format_stat_json(sample_report());
  ASSERT_EQ(json.back(), '\n');
  EXPECT_EQ(json.find('\n'), json.size() - 1);  // one line
  boost::property_tree::ptree tree;
  std::istringstream in(json);
  ASSERT_NO_THROW(boost::property_tree::read_json(in, tree)) << json;
  EXPECT_EQ(tree.get<std::string>("image"), "countwork.elf");
  EXPECT_EQ(tree.get<unsigned>("slots"), 4u);
  EXPECT_EQ(tree.get<unsigned>("vcpus"), 1u);
  EXPECT_EQ(tree.get<std::uint64_t>("elapsed_ns"), 2'000'000u);
  EXPECT_EQ(tree.get<std::uint64_t>("vcpu_time_ns"), 1'000'000u);
  EXPECT_EQ(tree.get<std::uint64_t>("rotation_interval_ns"), 4'000'000u);
  std::vector<boost::property_tree::ptree> events;
  for (const auto& [key, value] : tree.get_child("events")) events.push_back(value);
  ASSERT_EQ(events.size(), 3u);
  const auto& mux = events[1];
  EXPECT_EQ(mux.get<std::string>("spec"), "mem:cw_mux0:w,period=10");
  EXPECT_EQ(mux.get<std::string>("location"), "cw_counter");
  EXPECT_EQ(mux.get<std::string>("address"), "0x10a000");
  EXPECT_EQ(mux.get<unsigned>("length"), 4u);
  EXPECT_EQ(mux.get<std::string>("type"), "w");
  EXPECT_EQ(mux.get<std::string>("pinned"), "false");
  EXPECT_EQ(mux.get<std::string>("exclusive"), "false");
  EXPECT_EQ(mux.get<std::string>("vcpu"), "null");
  EXPECT_EQ(mux.get<std::uint64_t>("period"), 10u);
  EXPECT_EQ(mux.get<std::uint64_t>("count"), 250u);
  EXPECT_EQ(mux.get<std::uint64_t>("samples"), 25u);
  EXPECT_EQ(mux.get<std::uint64_t>("time_enabled_ns"), 1'000'000u);
  EXPECT_EQ(mux.get<std::uint64_t>("time_running_ns"), 400'000u);
  EXPECT_EQ(mux.get<std::uint64_t>("scaled"), 625u);
  EXPECT_EQ(mux.get<std::string>("multiplexed"), "true");
  EXPECT_EQ(mux.get<std::string>("counted"), "true");
  EXPECT_DOUBLE_EQ(mux.get<double>("running_percent"), 40.0);
  EXPECT_EQ(mux.get_child("per_vcpu").begin()->second.get_value<std::uint64_t>(), 250u);
  EXPECT_EQ(events[2].get<std::string>("spec"), "mem:\"odd\\name\"");  // escaped and restored
  EXPECT_EQ(events[2].get<std::string>("counted"), "false");
  const auto& per_vcpu = tree.get_child("per_vcpu").begin()->second;
  EXPECT_EQ(per_vcpu.get<unsigned>("vcpu"), 0u);
  EXPECT_EQ(per_vcpu.get<std::uint64_t>("hits"), 450u);
}

TEST(StatReport, AnEventThatCouldNotBePlacedSaysSo) {
  StatReport report = sample_report();
  EventStat never = event("mem:cw_flag:w,pinned", 0, 1'000'000, 0);
  never.pinned = true;
  never.place_failures = 1;
  never.not_placed = "no slot (pinned event could not be placed; raise --slots)";
  report.events.push_back(never);
  EventStat partly = event("mem:cw_tick:x,pinned", 30, 1'000'000, 500'000);
  partly.place_failures = 2;
  partly.not_placed = "exclusive (pinned event could not be placed)";
  report.events.push_back(partly);

  EXPECT_EQ(report.events[0].state(), "counted");
  EXPECT_EQ(report.events[1].state(), "multiplexed");
  EXPECT_EQ(report.events[2].state(), "not counted");
  EXPECT_EQ(report.events[3].state(), "error");
  EXPECT_EQ(report.events[4].state(), "error");

  const std::string table = format_stat_table(report, "drvm: ");
  EXPECT_NE(table.find("mem:cw_flag:w,pinned  <not counted: no slot (pinned event could not be "
                       "placed; raise --slots)>\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("mem:cw_tick:x,pinned  <partly not counted: exclusive"), std::string::npos)
      << table;
  EXPECT_EQ(table.find("mem:cw_counter:w  <"), std::string::npos);  // placed events: no note

  boost::property_tree::ptree json;
  std::istringstream in(format_stat_json(report));
  boost::property_tree::read_json(in, json);
  std::vector<boost::property_tree::ptree> events;
  for (const auto& [key, e] : json.get_child("events")) events.push_back(e);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].get<std::string>("state"), "counted");
  EXPECT_EQ(events[0].get<std::string>("not_placed"), "null");
  EXPECT_EQ(events[0].get<unsigned>("place_failures"), 0u);
  EXPECT_EQ(events[3].get<std::string>("state"), "error");
  EXPECT_EQ(events[3].get<unsigned>("place_failures"), 1u);
  EXPECT_EQ(events[3].get<std::string>("not_placed"),
            "no slot (pinned event could not be placed; raise --slots)");
}

}  // namespace
}  // namespace drvm::vmm::session
