// The guest owns its four debug registers (issue 10, item 2): pinned host events on a 4-host-slot
// layout leave drtest.elf's own breakpoints working, and a host breakpoint that cannot be placed
// is reported to its owner (gdb's Z reply and `monitor events`).
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "debug_harness.hpp"
#include "vmm/gdb/gdb_target.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

const std::string kDrtestImage = std::string(DRVM_GUEST_DIR) + "/drtest.elf";

std::vector<std::string> lines_starting(const std::string& text, std::string_view prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix)) out.push_back(line);
  }
  return out;
}

// drtest's results on this host with no host event at all: the reference (a case may depend on
// the host CPU, e.g. DR6.RTM).
std::string baseline_output() {
  GuestRun run(kDrtestImage, "", false, bp::kMaxHostSlots);
  const vmm::RunOutcome outcome = run.run();
  (void)outcome;
  return run.output();
}

TEST(GuestFirstVm, DrtestPassesWithFourPinnedHostEventsOnFourHostSlots) {
  DRVM_REQUIRE_KVM();
  const std::string baseline = baseline_output();
  const std::vector<std::string> baseline_failures = lines_starting(baseline, "FAIL ");
  ASSERT_EQ(lines_starting(baseline, "PASS ").size() + baseline_failures.size(), 69u) << baseline;

  GuestRun run(kDrtestImage, "", false, 4);
  auto& controller = run.controller();
  // Four pinned host events fill the host's 4 slots for the whole run.
  const std::vector<bp::EventId> ids = {
      create(controller, host_event(run.symbol("drtest_config"), 8, bp::BpType::kWrite)),
      create(controller, host_event(run.symbol("drtest_record"), 8, bp::BpType::kWrite)),
      create(controller, host_event(run.symbol("drtest_area") + 0x500, 8, bp::BpType::kWrite)),
      create(controller, host_event(run.symbol("drtest_area") + 0x700, 4, bp::BpType::kWrite)),
  };
  for (bp::EventId id : ids) {
    ASSERT_EQ(controller.event_state(id).value(), bp::EventState::kActive);
  }
  (void)run.run();
  const std::string output = run.output();
  // Every case the host's CPU lets pass, passes: no guest breakpoint lost its slot.
  EXPECT_EQ(lines_starting(output, "FAIL "), baseline_failures) << output;
  EXPECT_EQ(lines_starting(output, "PASS ").size(), 69u - baseline_failures.size()) << output;
  // And the host's events were never pushed off either.
  for (bp::EventId id : ids) {
    const bp::EventReading reading = controller.read_event(id).value();
    EXPECT_EQ(reading.errors, 0u);
    EXPECT_EQ(reading.time_error, 0u);
    EXPECT_EQ(controller.event_state(id).value(), bp::EventState::kActive);
  }
  EXPECT_GT(count(controller, ids[1]), 0u);  // drtest_record is written by every case
}

TEST(GuestFirstVm, GdbBreakpointThatCannotBePlacedIsAnErrorReply) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDrtestImage, "", false, 4);
  auto& controller = run.controller();
  // A counting session holds the host's 4 slots with pinned events; gdb's own reservation is
  // admitted (targets do not compete in it) but there is no slot to put it on.
  std::vector<bp::EventId> session;
  for (std::uint64_t k = 0; k < 4; ++k) {
    session.push_back(create(
        controller, host_event(run.symbol("drtest_area") + 0x500 + 8 * k, 8, bp::BpType::kWrite)));
  }
  vmm::GdbTarget target(run.machine(), controller, false);
  const gdbstub::Breakpoint hbreak{gdbstub::BreakpointKind::kHardware, run.symbol("drtest_store64"),
                                   1};
  const gdbstub::Status refused = target.insert_breakpoint(hbreak);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), 28);  // ENOSPC
  EXPECT_NE(refused.message().find("cannot be placed: no slot"), std::string::npos)
      << refused.message();
  EXPECT_NE(target.monitor_command("events").find("gdb: 0 breakpoints"), std::string::npos);
  // A slot freed: the same request is placed.
  ASSERT_TRUE(controller.destroy_event(session.back()).ok());
  EXPECT_TRUE(target.insert_breakpoint(hbreak).ok());
}

TEST(GuestFirstVm, MonitorEventsShowsABreakpointPushedOffItsSlot) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDrtestImage, "", false, 4);
  auto& controller = run.controller();
  vmm::GdbTarget target(run.machine(), controller, false);
  const gdbstub::Breakpoint hbreak{gdbstub::BreakpointKind::kHardware, run.symbol("drtest_store64"),
                                   1};
  ASSERT_TRUE(target.insert_breakpoint(hbreak).ok());
  // A session's exclusive vCPU-bound event is placed before gdb's task-like one and keeps it out.
  bp::EventSpec exclusive = host_event(run.symbol("drtest_config"), 8, bp::BpType::kWrite);
  exclusive.binding = bp::Binding::on_vcpu(0, vmm::debug::kSessionOwner);
  exclusive.exclusive = true;
  const bp::EventId id = create(controller, exclusive);
  EXPECT_EQ(controller.event_state(id).value(), bp::EventState::kActive);
  const std::string events = target.monitor_command("events");
  EXPECT_NE(events.find("NOT PLACED: exclusive"), std::string::npos) << events;
}

}  // namespace
}  // namespace drvm::test
