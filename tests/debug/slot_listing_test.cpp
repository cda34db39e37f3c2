// DebugController::slots() and `monitor dr`: every used slot of a vCPU with its owner (the
// guest's DR number for its own breakpoints), attributes and engine.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <regex>

#include "debug_harness.hpp"
#include "vmm/gdb/gdb_monitor.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

const std::string kHelloImage = std::string(DRVM_GUEST_DIR) + "/hello.elf";
constexpr std::uint64_t kDr7L0Write8 = 0x401 | (1u << 16) | (2u << 18);  // L0, RW0=01, LEN0=8

TEST(SlotListing, GuestAndSessionSlotsShowTheirEngines) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kHelloImage, "", false);
  auto& controller = run.controller();
  // Write watches on code the guest never writes: armed, never hit.
  const std::uint64_t code = run.symbol("guest_main") & ~std::uint64_t{7};
  bp::GuestDebugRegs regs;
  regs.dr[0] = code;
  regs.dr6 = 0xffff0ff0;
  regs.dr7 = kDr7L0Write8;
  ASSERT_FALSE(controller.set_guest_debug_regs(0, regs).has_value());
  bp::EventSpec spec;
  spec.attr = bp::BpAttr{code + 8, 8, bp::BpType::kWrite};
  spec.binding = bp::Binding::target_all(vmm::debug::kSessionOwner);
  const auto session = controller.create_event(spec);
  ASSERT_TRUE(session.ok());
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;

  const std::vector<vmm::debug::SlotInfo> slots = controller.slots(0);
  ASSERT_EQ(slots.size(), 2u);
  const auto& guest = slots[0].owner == bp::kGuestTarget ? slots[0] : slots[1];
  const auto& host = slots[0].owner == bp::kGuestTarget ? slots[1] : slots[0];
  EXPECT_EQ(guest.owner, bp::kGuestTarget);
  EXPECT_EQ(guest.guest_dr, 0u);
  EXPECT_EQ(guest.attr.addr, code);
  EXPECT_EQ(guest.attr.len, 8u);
  EXPECT_EQ(guest.attr.type, bp::BpType::kWrite);
  EXPECT_NE(guest.engine, vmm::debug::Engine::kNone);
  EXPECT_EQ(guest.state, bp::EventState::kActive);
  EXPECT_EQ(host.owner, vmm::debug::kSessionOwner);
  EXPECT_EQ(host.event, session.value());
  EXPECT_FALSE(host.guest_dr.has_value());
  EXPECT_EQ(host.engine, controller.engine_of(0, session.value()));
  EXPECT_NE(host.engine, vmm::debug::Engine::kNone);
  EXPECT_NE(guest.slot, host.slot);
  EXPECT_TRUE(controller.slots(1).empty());  // no such vCPU

  const std::string out = vmm::run_monitor_command("dr", run.machine(), controller, {});
  const std::string engine = "(hardware|int3|read-only page|unmapped page|single-step)\n";
  EXPECT_TRUE(std::regex_search(
      out, std::regex(fmt::format(R"(guest +dr0 +{:#018x} +write +8 +)", code) + engine)))
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(guest +dr1 +0x0{16} +execute +1 +disabled)")))
      << out;
  EXPECT_TRUE(std::regex_search(
      out,
      std::regex(fmt::format(R"(session +slot {} +{:#018x} +write +8 +)", host.slot, code + 8) +
                 engine)))
      << out;
}

}  // namespace
}  // namespace drvm::test
