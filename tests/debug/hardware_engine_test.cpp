// The hardware engine (KVM_SET_GUEST_DEBUG debug registers) where the probe says the host delivers
// it, and the INT3 engine that takes over instruction breakpoints beyond the four hardware slots.
// Tests of a hardware path skip, naming the probe's observation, on hosts without it.
#include <gtest/gtest.h>

#include <array>

#include "debug_harness.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

using vmm::debug::Engine;

constexpr unsigned kLoopIterations = 200;  // debugwork_main.c LOOP_ITERATIONS

TEST(HardwareEngine, InstructionBreakpointsBeyondFourSlotsUseInt3) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", false);
  auto& c = run.controller();
  if (!c.probe().hw_insn_bp.yes()) {
    GTEST_SKIP() << "this host delivers no hardware instruction breakpoints: "
                 << c.probe().hw_insn_bp.detail;
  }
  // Five breakpoints on one instruction: four fill the hardware slots, the fifth is planted.
  std::array<bp::EventId, 5> ids{};
  for (auto& id : ids)
    id = create(c, host_event(run.symbol("host_exec_target"), 1, bp::BpType::kExecute));
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  unsigned hardware = 0, planted = 0;
  for (const auto id : ids) {
    EXPECT_EQ(count(c, id), kLoopIterations);
    hardware += c.engine_of(0, id) == Engine::kHardware;
    planted += c.engine_of(0, id) == Engine::kInt3;
  }
  EXPECT_EQ(hardware, 4u);
  EXPECT_EQ(planted, 1u);
}

TEST(HardwareEngine, DataWatchpointsUseHardwareSlotsWhereTheHostDeliversThem) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", false);
  auto& c = run.controller();
  if (!c.probe().hw_data_bp_write.yes() || !c.probe().hw_data_bp_rw.yes()) {
    GTEST_SKIP() << "this host delivers no hardware data breakpoints: "
                 << c.probe().hw_data_bp_write.detail;
  }
  const bp::EventId write =
      create(c, host_event(run.symbol("host_write_target"), 8, bp::BpType::kWrite));
  const bp::EventId read =
      create(c, host_event(run.symbol("host_read_target"), 8, bp::BpType::kReadWrite));
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  EXPECT_EQ(c.engine_of(0, write), Engine::kHardware);
  EXPECT_EQ(c.engine_of(0, read), Engine::kHardware);
  EXPECT_EQ(count(c, write), kLoopIterations);
  EXPECT_EQ(count(c, read), kLoopIterations);
}

TEST(HardwareEngine, DataWatchpointsUsePageProtectionWhereTheHostDropsThem) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", false);
  auto& c = run.controller();
  if (c.probe().hw_data_bp_write.yes()) {
    GTEST_SKIP() << "this host delivers hardware data breakpoints: the page engines stay unused";
  }
  const bp::EventId write =
      create(c, host_event(run.symbol("host_write_target"), 8, bp::BpType::kWrite));
  const bp::EventId read =
      create(c, host_event(run.symbol("host_read_target"), 8, bp::BpType::kReadWrite));
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  EXPECT_EQ(c.engine_of(0, write), Engine::kReadOnlyPage);
  EXPECT_EQ(c.engine_of(0, read), Engine::kUnmappedPage);
  EXPECT_EQ(count(c, write), kLoopIterations);
  EXPECT_EQ(count(c, read), kLoopIterations);
}

}  // namespace
}  // namespace drvm::test
