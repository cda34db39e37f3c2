// The exits a KVM with VMX or SVM hands to userspace while drvm holds KVM_GUESTDBG_USE_HW_BP
// (KVM's vmx.c handle_exception_nmi and svm.c db_interception intercept every #DB then): the
// guest's own TF single-step, ICEBP, and MOV DR under the host's DR7.GD. These machines' KVM never
// produces them, so each test feeds the controller the KVM_EXIT_DEBUG the KVM API and KVM's
// source specify, with a probe that answers as such a host would (issue 10, item 3).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <memory>

#include "debug_harness.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::test {
namespace {

const std::string kHelloImage = std::string(DRVM_GUEST_DIR) + "/hello.elf";

// A host with hardware virtualization: every engine in hardware, MOV DR exits through DR7.GD.
const vmm::ProbeResult& hardware_host_probe() {
  static const vmm::ProbeResult result = [] {
    vmm::ProbeResult r = vmm::probe_once(*kvm_system());
    for (vmm::Finding* f : {&r.hw_insn_bp, &r.hw_insn_bp_rf, &r.hw_data_bp_write, &r.hw_data_bp_rw,
                            &r.gd_exit, &r.sw_bp_debug_exit, &r.single_step}) {
      f->answer = vmm::Answer::yes;
    }
    return r;
  }();
  return result;
}

class StandardHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kvm_system() == nullptr) GTEST_SKIP() << "no usable /dev/kvm";
    run_ = std::make_unique<GuestRun>(kHelloImage, "", false, 64, []() -> const vmm::ProbeResult& {
      return hardware_host_probe();
    });
  }

  vmm::Vcpu& vcpu() { return run_->machine().vcpu(0).vcpu(); }

  // Places `bytes` at the vCPU's RIP (PVH entry: paging off, linear = physical).
  void code_at_rip(std::span<const std::uint8_t> bytes) {
    ASSERT_TRUE(run_->machine().memory().write(vcpu().regs().rip, std::as_bytes(bytes)));
  }

  // Feeds one KVM_EXIT_DEBUG as VMX/SVM report it: exception vector, DR6, linear RIP.
  std::optional<vmm::ExitAction> debug_exit(std::uint32_t exception, std::uint64_t dr6) {
    auto run = std::make_unique<kvm_run>();
    run->exit_reason = KVM_EXIT_DEBUG;
    run->debug.arch.exception = exception;
    run->debug.arch.dr6 = dr6;
    run->s.regs.regs = vcpu().regs();
    run->s.regs.sregs = vcpu().sregs();
    run->debug.arch.pc = run->s.regs.sregs.cs.base + run->s.regs.regs.rip;
    return run_->controller().on_exit(run_->machine().vcpu(0), vmm::decode_exit(*run));
  }

  bool db_pending() {
    const kvm_vcpu_events events = vcpu().events();
    return events.exception.nr == vmm::x86::kVectorDb &&
           (events.exception.pending || events.exception.injected);
  }

  std::unique_ptr<GuestRun> run_;
};

TEST_F(StandardHost, GuestSingleStepIsDeliveredWithBs) {
  const std::uint64_t rip = vcpu().regs().rip;
  const auto action = debug_exit(vmm::x86::kVectorDb, 0xffff4ff0);
  ASSERT_TRUE(action.has_value()) << "declined: the run would end as an unexpected debug exit";
  EXPECT_EQ(*action, vmm::ExitAction::kResume);
  EXPECT_TRUE(db_pending());
  EXPECT_EQ(vcpu().regs().rip, rip);  // trap-like: RIP already past the stepped instruction
  EXPECT_EQ(run_->controller().guest_debug_regs(0).dr6, 0xffff4ff0u);
  EXPECT_EQ(run_->controller().counters(0).guest_debug_exceptions, 1u);
}

TEST_F(StandardHost, IcebpIsSkippedAndDeliveredWithoutStatusBits) {
  bp::GuestDebugRegs regs = run_->controller().guest_debug_regs(0);
  regs.dr6 |= bp::dr6::b(1) | bp::dr6::kBs;  // left over from an earlier #DB
  ASSERT_FALSE(run_->controller().set_guest_debug_regs(0, regs).has_value());
  const std::array<std::uint8_t, 2> icebp{vmm::x86::kIcebp, 0x90};
  code_at_rip(icebp);
  const std::uint64_t rip = vcpu().regs().rip;
  const auto action = debug_exit(vmm::x86::kVectorDb, 0xffff0ff0);
  ASSERT_TRUE(action.has_value());
  EXPECT_TRUE(db_pending());
  EXPECT_EQ(vcpu().regs().rip, rip + 1);  // VMX exits at the ICEBP; the #DB is a trap after it
  // B0-B3 cleared as by every #DB; BS is not ICEBP's to clear.
  EXPECT_EQ(run_->controller().guest_debug_regs(0).dr6, 0xffff4ff0u);
}

TEST_F(StandardHost, MovDrUnderTheHostsGeneralDetectIsEmulated) {
  // mov %eax, %db0 (0F 23 C0) in the guest's 32-bit entry code.
  const std::array<std::uint8_t, 3> mov_to_dr0{0x0f, 0x23, 0xc0};
  code_at_rip(mov_to_dr0);
  run_->controller().probe();  // the answers that make drvm set the host's DR7.GD
  kvm_regs regs = vcpu().regs();
  regs.rax = 0x123458;
  vcpu().set_regs(regs);
  const auto action = debug_exit(vmm::x86::kVectorDb, 0xffff2ff0);  // DR6.BD
  ASSERT_TRUE(action.has_value());
  EXPECT_EQ(*action, vmm::ExitAction::kResume);
  EXPECT_EQ(vcpu().regs().rip, regs.rip + 3);
  EXPECT_EQ(run_->controller().guest_debug_regs(0).dr[0], 0x123458u);
  EXPECT_FALSE(db_pending());  // the host's GD is not the guest's: no #DB for it
  EXPECT_EQ(run_->controller().counters(0).dr_emulations, 1u);
}

// A data breakpoint on a hardware slot fires as KVM_EXIT_DEBUG with its DR6 bit, after the access,
// and the engine never sees the access itself. The hit is still a data hit: a stop it asks for is
// a watchpoint stop (gdb's `watch:ADDR`), not a breakpoint stop.
TEST_F(StandardHost, HardwareDataHitStopsAsAWatchpointWithoutTheAccess) {
  vmm::debug::DebugController& c = run_->controller();
  constexpr std::uint64_t kWatched = 0x200000;  // RAM; the PVH entry runs with paging off
  bp::EventSpec spec;
  spec.attr = bp::BpAttr{kWatched, 4, bp::BpType::kWrite};
  spec.binding = bp::Binding::target_all(vmm::debug::kGdbOwner);
  ASSERT_TRUE(c.create_event(spec).ok());
  std::vector<vmm::debug::HostHit> hits;
  std::vector<vmm::debug::StopInfo> stops;
  c.set_hit_callback(vmm::debug::kGdbOwner, [&](const vmm::debug::HostHit& hit) {
    hits.push_back(hit);
    return true;  // stop, as gdb's events do
  });
  c.set_stop_callback([&](unsigned, const vmm::debug::StopInfo& info) { stops.push_back(info); });
  c.before_run(run_->machine().vcpu(0));  // arms the event
  const std::vector<vmm::debug::SlotInfo> slots = c.slots(0);
  const auto armed = std::find_if(slots.begin(), slots.end(), [](const vmm::debug::SlotInfo& s) {
    return s.owner == vmm::debug::kGdbOwner;
  });
  ASSERT_NE(armed, slots.end());
  ASSERT_EQ(armed->engine, vmm::debug::Engine::kHardware);
  ASSERT_EQ(armed->slot, 0u);  // the first hardware slot: DR0, reported as DR6.B0
  const auto action = debug_exit(vmm::x86::kVectorDb, 0xffff0ff1);
  ASSERT_TRUE(action.has_value());
  EXPECT_EQ(*action, vmm::ExitAction::kPause);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_TRUE(hits[0].data);
  EXPECT_FALSE(hits[0].access.has_value());
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].kind, vmm::debug::StopKind::kWatchpoint);
  EXPECT_EQ(stops[0].rip, vcpu().regs().rip);
  EXPECT_FALSE(db_pending());  // the host's hit, not the guest's
}

}  // namespace
}  // namespace drvm::test
