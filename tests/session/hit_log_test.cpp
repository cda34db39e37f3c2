// --trace and --record lines: the exact text format, the JSON lines parsed back, and the per-vCPU
// buffering (nothing lost, everything out after flush()).
#include "vmm/session/hit_log.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "harness/property_tree_json.hpp"
#include "symtab_elf.hpp"

namespace drvm::vmm::session {
namespace {

SymbolTable symbols() {
  return SymbolTable::from_elf(test::build_symtab_elf64({
      {"cw_counter", 0x10a000, 4, STT_OBJECT},
      {"cw_write_loop", 0x101600, 0x20, STT_FUNC},
      {"cw_tick", 0x101670, 2, STT_FUNC},
  }));
}

TraceHit write_hit() {
  TraceHit hit;
  hit.vcpu = 0;
  hit.event = "mem:cw_counter:w";
  hit.count = 7;
  hit.rip = 0x10160f;
  hit.access = "w";
  hit.address = 0x10a000;
  hit.size = 4;
  hit.old_value = 6;
  hit.new_value = 7;
  return hit;
}

std::string trace_line(const TraceHit& hit) {
  const SymbolTable table = symbols();
  fmt::memory_buffer out;
  append_trace_line(out, hit, table);
  return fmt::to_string(out);
}

std::string record_line(const TraceHit& hit) {
  const SymbolTable table = symbols();
  fmt::memory_buffer out;
  append_record_line(out, hit, table);
  return fmt::to_string(out);
}

boost::property_tree::ptree parse(const std::string& line) {
  boost::property_tree::ptree tree;
  std::istringstream in(line);
  boost::property_tree::read_json(in, tree);
  return tree;
}

TEST(TraceLine, WriteWithValues) {
  EXPECT_EQ(trace_line(write_hit()),
            "drvm: trace: vcpu=0 rip=cw_write_loop+0xf access=w addr=cw_counter size=4 old=0x6 "
            "new=0x7 event=mem:cw_counter:w count=7\n");
}

TEST(TraceLine, ExecuteSampleAndUnknownAddresses) {
  TraceHit hit;
  hit.vcpu = 1;
  hit.event = "mem:cw_tick:x,period=2";
  hit.count = 4;
  hit.sample = true;
  hit.rip = 0x101670;
  hit.access = "x";
  hit.address = 0x101670;
  EXPECT_EQ(trace_line(hit),
            "drvm: trace: vcpu=1 rip=cw_tick access=x addr=cw_tick size=1 "
            "event=mem:cw_tick:x,period=2 count=4 sample\n");
  TraceHit read = write_hit();
  read.access = "r";
  read.address = 0x20000;
  read.rip = 0x30000;
  read.old_value.reset();
  read.new_value.reset();
  EXPECT_EQ(trace_line(read),
            "drvm: trace: vcpu=0 rip=0x30000 access=r addr=0x20000 size=4 "
            "event=mem:cw_counter:w count=7\n");
}

TEST(RecordLine, ParsesBackWithEveryField) {
  const std::string line = record_line(write_hit());
  ASSERT_EQ(line.back(), '\n');
  const auto tree = parse(line);
  EXPECT_EQ(tree.get<unsigned>("vcpu"), 0u);
  EXPECT_EQ(tree.get<std::string>("event"), "mem:cw_counter:w");
  EXPECT_EQ(tree.get<std::uint64_t>("count"), 7u);
  EXPECT_EQ(tree.get<std::string>("sample"), "false");
  EXPECT_EQ(tree.get<std::string>("rip"), "0x10160f");
  EXPECT_EQ(tree.get<std::string>("rip_symbol"), "cw_write_loop+0xf");
  EXPECT_EQ(tree.get<std::string>("access"), "w");
  EXPECT_EQ(tree.get<std::string>("address"), "0x10a000");
  EXPECT_EQ(tree.get<std::string>("address_symbol"), "cw_counter");
  EXPECT_EQ(tree.get<unsigned>("size"), 4u);
  EXPECT_EQ(tree.get<std::string>("old"), "0x6");
  EXPECT_EQ(tree.get<std::string>("new"), "0x7");
}

TEST(RecordLine, ValuesAreLeftOutWhenUnknownAndSpecsAreEscaped) {
  TraceHit hit = write_hit();
  hit.old_value.reset();
  hit.new_value.reset();
  hit.event = "mem:\"q\"";
  const auto tree = parse(record_line(hit));
  EXPECT_FALSE(tree.get_optional<std::string>("old").has_value());
  EXPECT_FALSE(tree.get_optional<std::string>("new").has_value());
  EXPECT_EQ(tree.get<std::string>("event"), "mem:\"q\"");
}

TEST(HitLog, BuffersPerVcpuAndWritesEverythingOnFlush) {
  const SymbolTable table = symbols();
  std::FILE* sink = std::tmpfile();
  ASSERT_NE(sink, nullptr);
  constexpr int kHits = 2000;  // several times the buffer threshold
  {
    HitLog log(sink, HitLog::Format::kRecord, table, 2);
    for (int i = 1; i <= kHits; ++i) {
      TraceHit hit = write_hit();
      hit.vcpu = static_cast<unsigned>(i % 2);
      hit.count = static_cast<std::uint64_t>(i);
      log.add(hit);
    }
    log.flush();
    EXPECT_TRUE(log.ok());
  }
  std::rewind(sink);
  std::string text;
  char chunk[4096];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, sink)) > 0;) text.append(chunk, n);
  std::fclose(sink);
  std::istringstream lines(text);
  std::vector<bool> seen(kHits + 1, false);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    const auto tree = parse(line);
    const auto n = tree.get<std::uint64_t>("count");
    ASSERT_LE(n, static_cast<std::uint64_t>(kHits));
    EXPECT_EQ(tree.get<unsigned>("vcpu"), n % 2);
    seen[n] = true;
  }
  EXPECT_EQ(count, kHits);
  for (int i = 1; i <= kHits; ++i) EXPECT_TRUE(seen[i]) << i;
}

TEST(HitLog, ReportsAFailingSink) {
  const SymbolTable table = symbols();
  std::FILE* read_only = std::fopen("/dev/null", "r");
  ASSERT_NE(read_only, nullptr);
  {
    HitLog log(read_only, HitLog::Format::kTrace, table, 1);
    log.add(write_hit());
    log.flush();
    EXPECT_FALSE(log.ok());
  }
  std::fclose(read_only);
}

}  // namespace
}  // namespace drvm::vmm::session
