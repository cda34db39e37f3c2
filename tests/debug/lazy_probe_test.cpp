// The controller runs the capability probe only when it first needs an answer: a guest that never
// touches debug registers (and has no host events) starts without it.
#include <gtest/gtest.h>

#include "debug_harness.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

const std::string kHelloImage = std::string(DRVM_GUEST_DIR) + "/hello.elf";

// A probe source that counts how often the controller asks for the answers.
struct CountingProbe {
  unsigned calls = 0;
  vmm::debug::ProbeSource source() {
    return [this]() -> const vmm::ProbeResult& {
      ++calls;
      return vmm::probe_once(*kvm_system());
    };
  }
};

TEST(LazyProbe, PlainImageRunsWithoutTheProbe) {
  DRVM_REQUIRE_KVM();
  CountingProbe probe;
  GuestRun run(kHelloImage, "", false, 64, probe.source());
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  EXPECT_NE(run.output().find("hello from the guest"), std::string::npos) << run.output();
  EXPECT_EQ(probe.calls, 0u);
  // hello.elf holds MOV DR sites (guestfw's fault dump): planted, never reached.
  EXPECT_EQ(run.controller().counters(0).dr_emulations, 0u);
  // `monitor probe` asks for it: it runs then, once.
  EXPECT_EQ(&run.controller().probe(), &vmm::probe_once(*kvm_system()));
  (void)run.controller().probe();
  EXPECT_EQ(probe.calls, 1u);
}

TEST(LazyProbe, FirstHostEventRunsTheProbe) {
  DRVM_REQUIRE_KVM();
  CountingProbe probe;
  GuestRun run(kHelloImage, "", false, 64, probe.source());
  EXPECT_EQ(probe.calls, 0u);
  bp::EventSpec spec;
  spec.attr = bp::BpAttr{run.symbol("guest_main"), 1, bp::BpType::kExecute};
  spec.binding = bp::Binding::target_all(vmm::debug::kSessionOwner);
  const auto id = run.controller().create_event(spec);
  ASSERT_TRUE(id.ok()) << bp::error_message(id.error());
  EXPECT_EQ(probe.calls, 1u);
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  EXPECT_EQ(run.controller().read_event(id.value()).value().value, 1u);
  EXPECT_EQ(probe.calls, 1u);
}

TEST(LazyProbe, GuestBreakpointRunsTheProbeWhenFirstArmed) {
  DRVM_REQUIRE_KVM();
  CountingProbe probe;
  // debugwork.elf programs its own debug registers: arming them needs the host's answers.
  GuestRun run(kDebugworkImage, "", false, 64, probe.source());
  EXPECT_EQ(probe.calls, 0u);
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  EXPECT_EQ(probe.calls, 1u);
  EXPECT_GT(run.controller().counters(0).dr_emulations, 0u);
}

}  // namespace
}  // namespace drvm::test
