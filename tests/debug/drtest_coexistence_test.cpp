// drtest.elf (the guest's SDM suite, docs/drtest.md) passes while the host holds breakpoints and
// watchpoints of its own on the same and other addresses, and every host count is exact: the
// fast engines count what the --exact reference counts, event by event (issue 4, item 6).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "debug_harness.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

const std::string kDrtestImage = std::string(DRVM_GUEST_DIR) + "/drtest.elf";
constexpr std::uint64_t kPage = 4096;  // drtest.h DRTEST_PAGE

struct HostEvent {
  const char* symbol;
  std::uint64_t offset;
  std::uint32_t len;
  bp::BpType type;
  bp::TargetId owner;
};

// On the guest's own breakpoint and watch addresses (drtest_instruction.c, drtest_control.c,
// drtest_contexts.c) and next to them.
const std::vector<HostEvent> kHostEvents = {
    {"drtest_increment_insn", 0, 1, bp::BpType::kExecute, vmm::debug::kSessionOwner},
    {"drtest_increment_insn", 0, 1, bp::BpType::kExecute, vmm::debug::kGdbOwner},
    {"drtest_store64", 0, 1, bp::BpType::kExecute, vmm::debug::kSessionOwner},
    {"drtest_counting_loop_insn", 0, 1, bp::BpType::kExecute, vmm::debug::kSessionOwner},
    {"drtest_rep_movsb_insn", 0, 1, bp::BpType::kExecute, vmm::debug::kSessionOwner},
    {"drtest_area", 0x500, 8, bp::BpType::kWrite, vmm::debug::kSessionOwner},
    {"drtest_area", 0x600, 8, bp::BpType::kReadWrite, vmm::debug::kSessionOwner},
    {"drtest_area", 0x700, 4, bp::BpType::kWrite, vmm::debug::kSessionOwner},
    {"drtest_area", 0x807, 1, bp::BpType::kWrite, vmm::debug::kSessionOwner},
    {"drtest_area", kPage + 0x80a, 2, bp::BpType::kRead, vmm::debug::kSessionOwner},
    {"drtest_area", kPage + 0xf00, 8, bp::BpType::kReadWrite, vmm::debug::kSessionOwner},
};

std::vector<std::uint64_t> run_with_host_events(bool exact) {
  GuestRun run(kDrtestImage, "", exact);
  auto& controller = run.controller();
  std::vector<bp::EventId> ids;
  for (const HostEvent& event : kHostEvents) {
    SCOPED_TRACE(event.symbol);
    ids.push_back(create(controller, host_event(run.symbol(event.symbol) + event.offset, event.len,
                                                event.type, event.owner)));
  }
  const vmm::RunOutcome outcome = run.run();
  const std::string output = run.output();
  SCOPED_TRACE(exact ? "--exact" : "fast engines");
  EXPECT_EQ(outcome.status, vmm::status::exit_port(0)) << output << outcome.report;
  EXPECT_NE(output.find("summary: 69 passed, 0 failed, 0 skipped"), std::string::npos) << output;
  std::vector<std::uint64_t> counts;
  for (bp::EventId id : ids) counts.push_back(count(controller, id));
  return counts;
}

TEST(DrtestCoexistence, HostCountsMatchTheExactReference) {
  DRVM_REQUIRE_KVM();
  const std::vector<std::uint64_t> exact = run_with_host_events(true);
  const std::vector<std::uint64_t> fast = run_with_host_events(false);
  ASSERT_EQ(exact.size(), kHostEvents.size());
  ASSERT_EQ(fast.size(), kHostEvents.size());
  for (std::size_t i = 0; i < kHostEvents.size(); ++i) {
    EXPECT_EQ(fast[i], exact[i]) << "event " << i << " (" << kHostEvents[i].symbol << " + "
                                 << kHostEvents[i].offset << ")";
  }
  // Known counts: instruction_breakpoint_counts_50_iterations_exactly runs the loop body 50
  // times; the two owners of one address count alike; every event is hit.
  EXPECT_GE(exact[3], 50u);
  EXPECT_EQ(exact[0], exact[1]);
  for (std::size_t i = 0; i < exact.size(); ++i) EXPECT_GT(exact[i], 0u) << "event " << i;
}

}  // namespace
}  // namespace drvm::test
