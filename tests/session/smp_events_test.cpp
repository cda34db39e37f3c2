// Host events on a guest with several vCPUs: smp-debugregs.elf (guestfw/images/smp_debugregs.c),
// whose CPUs write a shared variable and their own variables known numbers of times. A VM-wide
// event counts every vCPU's accesses, a `,vcpu=N` one only vCPU N's; each hit is attributed to the
// vCPU that made the access (--stat --json per_vcpu, --trace's vcpu=); and the guest's own debug
// registers on every vCPU keep working, every #DB delivered, while host events watch the same
// addresses.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "guest_images.hpp"
#include "harness/property_tree_json.hpp"
#include "run_drvm.hpp"
#include "stat_run.hpp"

namespace drvm::test {
namespace {

using boost::property_tree::ptree;

const std::string kImage = std::string(DRVM_GUEST_DIR) + "/smp-debugregs.elf";
// watched[] is in .bss: guestfw's boot clears it on vCPU 0 with REP STOSQ, one write of each
// element, while the events are already armed (shared_counter is in .data for that reason).
constexpr std::uint64_t kBssClear = 1;

class SmpEvents : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable here";
  }
};

// smp-debugregs.elf on `cpus` vCPUs with the events; `cmdline` "drs=off" leaves the guest's debug
// registers alone.
Stat run_stat(unsigned cpus, const std::string& cmdline, const std::vector<std::string>& specs,
              std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"run",       kImage, "--cpus", std::to_string(cpus),
                                   "--timeout", "50"};
  if (!cmdline.empty()) args.insert(args.end(), {"--cmdline", cmdline});
  return run_with_stat(args, specs, extra);
}

std::vector<std::uint64_t> numbers(const ptree& array) {
  std::vector<std::uint64_t> out;
  for (const auto& [key, value] : array) out.push_back(value.get_value<std::uint64_t>());
  return out;
}

// The event's total and its per-vCPU counts; counted exactly (never multiplexed).
void expect_counts(const Stat& stat, const std::string& spec, std::uint64_t total,
                   const std::vector<std::uint64_t>& per_vcpu) {
  const auto it = stat.events.find(spec);
  ASSERT_NE(it, stat.events.end()) << "no event " << spec;
  const ptree& event = it->second;
  EXPECT_EQ(event.get<std::uint64_t>("count"), total) << spec;
  EXPECT_EQ(event.get<std::string>("state"), "counted") << spec;
  EXPECT_EQ(event.get<std::string>("multiplexed"), "false") << spec;
  EXPECT_EQ(numbers(event.get_child("per_vcpu")), per_vcpu) << spec;
}

// "cpu N (APIC ID N): ... shared_counter: W writes" lines: W by N, as the guest counted them.
std::map<unsigned, std::uint64_t> guest_reported_shared_writes(const std::string& serial) {
  static const std::regex line(R"(^smp-debugregs: cpu ([0-9]+) .*shared_counter: ([0-9]+) writes)");
  std::map<unsigned, std::uint64_t> writes;
  std::istringstream lines(serial);
  for (std::string text; std::getline(lines, text);) {
    std::smatch match;
    if (std::regex_search(text, match, line)) writes[std::stoul(match[1])] = std::stoull(match[2]);
  }
  return writes;
}

std::uint64_t total_shared_writes(unsigned cpus) {
  std::uint64_t total = 0;
  for (unsigned cpu = 0; cpu < cpus; ++cpu) total += smp_debugregs_shared_writes(cpu);
  return total;
}

// A VM-wide event counts the writes of every vCPU, each attributed to the vCPU that wrote, as the
// guest itself counted them.
TEST_F(SmpEvents, VmWideEventCountsEveryVcpusWrites) {
  for (const unsigned cpus : {2u, 4u}) {
    SCOPED_TRACE(fmt::format("{} vCPUs", cpus));
    const Stat stat = run_stat(cpus, "drs=off", {"mem:shared_counter:w"});
    EXPECT_EQ(stat.run.status, exit_port_status(kGuestSuccess)) << stat.run.err;
    EXPECT_EQ(stat.run.out, smp_debugregs_output(cpus, false));
    EXPECT_EQ(stat.json.get<unsigned>("vcpus"), cpus);
    const std::map<unsigned, std::uint64_t> reported = guest_reported_shared_writes(stat.run.out);
    ASSERT_EQ(reported.size(), cpus) << stat.run.out;
    std::vector<std::uint64_t> writes;
    for (unsigned cpu = 0; cpu < cpus; ++cpu) {
      writes.push_back(reported.at(cpu));
      EXPECT_EQ(reported.at(cpu), smp_debugregs_shared_writes(cpu));
    }
    expect_counts(stat, "mem:shared_counter:w", total_shared_writes(cpus), writes);
    EXPECT_EQ(stat.events.at("mem:shared_counter:w").get<std::string>("vcpu"), "null");
    // The machine's per_vcpu hits are the same (one event).
    std::vector<std::uint64_t> hits;
    for (const auto& [key, entry] : stat.json.get_child("per_vcpu")) {
      EXPECT_EQ(entry.get<unsigned>("vcpu"), hits.size());
      hits.push_back(entry.get<std::uint64_t>("hits"));
    }
    EXPECT_EQ(hits, writes);
  }
}

// An event bound to vCPU 1 counts only vCPU 1's writes. vCPU 1's thread arms it at its first
// entry, a little after vCPU 0 started: that wait is setup, so the event is counted all along
// (100% running), not multiplexed.
TEST_F(SmpEvents, EventBoundToVcpu1CountsOnlyItsWrites) {
  const unsigned cpus = 2;
  const Stat stat = run_stat(cpus, "drs=off", {"mem:shared_counter:w,vcpu=1"});
  EXPECT_EQ(stat.run.status, exit_port_status(kGuestSuccess)) << stat.run.err;
  EXPECT_EQ(stat.run.out, smp_debugregs_output(cpus, false));
  const std::map<unsigned, std::uint64_t> reported = guest_reported_shared_writes(stat.run.out);
  ASSERT_EQ(reported.size(), cpus) << stat.run.out;
  expect_counts(stat, "mem:shared_counter:w,vcpu=1", reported.at(1), {0, reported.at(1)});
  const ptree& event = stat.events.at("mem:shared_counter:w,vcpu=1");
  EXPECT_EQ(event.get<unsigned>("vcpu"), 1u);
  EXPECT_EQ(event.get<std::uint64_t>("time_running_ns"),
            event.get<std::uint64_t>("time_enabled_ns"));
  EXPECT_EQ(event.get<double>("running_percent"), 100.0);
}

// A hit belongs to the vCPU that made the access: watched[1] is written only by CPU 1 and read
// only by CPU 0, watched[0] the other way round; cpu1_work runs on CPU 1 only, shared_work on both.
TEST_F(SmpEvents, HitsAreAttributedToTheAccessingVcpu) {
  const unsigned cpus = 2;
  const Stat stat = run_stat(cpus, "drs=off",
                             {"mem:watched+4/4:rw", "mem:watched/4:rw,vcpu=1", "mem:cpu1_work:x",
                              "mem:shared_work:x,vcpu=0"});
  EXPECT_EQ(stat.run.status, exit_port_status(kGuestSuccess)) << stat.run.err;
  EXPECT_EQ(stat.run.out, smp_debugregs_output(cpus, false));
  const std::uint64_t writes = smp_debugregs_own_writes(1);
  // vCPU 0 also clears .bss at boot (one REP STOSQ element over each watched[] element).
  expect_counts(stat, "mem:watched+4/4:rw", kBssClear + writes + kSmpDebugregsForeignReads,
                {kBssClear + kSmpDebugregsForeignReads, writes});
  expect_counts(stat, "mem:watched/4:rw,vcpu=1", kSmpDebugregsForeignReads,
                {0, kSmpDebugregsForeignReads});
  expect_counts(stat, "mem:cpu1_work:x", smp_debugregs_own_calls(1),
                {0, smp_debugregs_own_calls(1)});
  expect_counts(stat, "mem:shared_work:x,vcpu=0", 3, {3, 0});
}

// --trace names the vCPU of each hit: vCPU 0's and vCPU 1's lines, each vCPU's as many as it
// wrote, every one from shared_increment. Each vCPU's lines come in its own blocks (per-vCPU
// buffers), so the counts ascend per vCPU and together are 1..total; under the guest's spin lock
// every write is one more than the last, so `new` is 1000 + count when the engine saw the values.
TEST_F(SmpEvents, TraceLinesNameTheVcpuOfEachHit) {
  const unsigned cpus = 2;
  const DrvmResult run =
      run_drvm({"run", kImage, "--cpus", std::to_string(cpus), "--cmdline", "drs=off", "--timeout",
                "50", "--event", "mem:shared_counter:w", "--trace"});
  EXPECT_EQ(run.status, exit_port_status(kGuestSuccess)) << run.err;
  EXPECT_EQ(run.out, smp_debugregs_output(cpus, false));
  const std::regex line(R"(drvm: trace: vcpu=([0-9]+) rip=shared_increment\+0x[0-9a-f]+ access=w )"
                        R"(addr=shared_counter size=4 (old=0x([0-9a-f]+) new=0x([0-9a-f]+) )?)"
                        R"(event=mem:shared_counter:w count=([0-9]+))");
  std::istringstream lines(run.err);
  std::map<unsigned, std::vector<std::uint64_t>> counts_by_vcpu;
  std::vector<std::uint64_t> counts;
  for (std::string text; std::getline(lines, text);) {
    std::smatch match;
    if (!std::regex_match(text, match, line)) {
      ADD_FAILURE() << "unexpected stderr line: " << text;
      continue;
    }
    const std::uint64_t count = std::stoull(match[5]);
    counts_by_vcpu[static_cast<unsigned>(std::stoul(match[1]))].push_back(count);
    counts.push_back(count);
    if (match[2].matched) {
      EXPECT_EQ(std::stoull(match[4], nullptr, 16), std::stoull(match[3], nullptr, 16) + 1);
      EXPECT_EQ(std::stoull(match[4], nullptr, 16), 1000 + count);
    }
  }
  ASSERT_EQ(counts_by_vcpu.size(), cpus) << run.err;
  for (unsigned vcpu = 0; vcpu < cpus; ++vcpu) {
    const std::vector<std::uint64_t>& mine = counts_by_vcpu[vcpu];
    EXPECT_EQ(mine.size(), smp_debugregs_shared_writes(vcpu)) << "vCPU " << vcpu;
    EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end())) << "vCPU " << vcpu;
  }
  std::sort(counts.begin(), counts.end());
  std::vector<std::uint64_t> every(total_shared_writes(cpus));
  std::iota(every.begin(), every.end(), 1);
  EXPECT_EQ(counts, every);
}

// The guest's own debug registers on every vCPU and the host's events on the very addresses they
// watch, at once: every #DB still reaches the guest (its output is the full pass), the host's
// counts are exact, an instruction the guest re-runs with RF after its own breakpoint counts once.
TEST_F(SmpEvents, GuestDebugRegistersAndHostEventsAtOnce) {
  const unsigned cpus = 2;
  const Stat stat = run_stat(cpus, "",
                             {"mem:shared_counter:w", "mem:watched+4/4:rw",
                              "mem:watched/4:w,vcpu=0", "mem:cpu1_work:x", "mem:shared_work:x"});
  EXPECT_EQ(stat.run.status, exit_port_status(kGuestSuccess)) << stat.run.err;
  EXPECT_EQ(stat.run.out, smp_debugregs_output(cpus));
  expect_counts(stat, "mem:shared_counter:w", total_shared_writes(cpus),
                {smp_debugregs_shared_writes(0), smp_debugregs_shared_writes(1)});
  expect_counts(stat, "mem:watched+4/4:rw",
                kBssClear + smp_debugregs_own_writes(1) + kSmpDebugregsForeignReads,
                {kBssClear + kSmpDebugregsForeignReads, smp_debugregs_own_writes(1)});
  expect_counts(stat, "mem:watched/4:w,vcpu=0", kBssClear + smp_debugregs_own_writes(0),
                {kBssClear + smp_debugregs_own_writes(0), 0});
  expect_counts(stat, "mem:cpu1_work:x", smp_debugregs_own_calls(1),
                {0, smp_debugregs_own_calls(1)});
  expect_counts(stat, "mem:shared_work:x", 3 * cpus, {3, 3});
}

}  // namespace
}  // namespace drvm::test
