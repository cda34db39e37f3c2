// DebugController's private state: the breakpoint manager, the VM-wide engine state, one
// VcpuDebug per vCPU, and the methods of the exit router. Its methods live in two files:
// debug_controller.cpp (probe answers, arming, exception delivery, hit routing, the guest's MOV DR,
// the public API) and exit_routing.cpp (instruction boundaries, drvm's steps, protected accesses,
// debug exits, the ExitInterceptor hooks). Everything here runs under `mutex` unless a method
// says otherwise.
#pragma once

#include <linux/kvm.h>

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bpcore/manager.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/debug/engines/page_engine.hpp"
#include "vmm/debug/engines/page_guard.hpp"
#include "vmm/debug/engines/trap_sites.hpp"
#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/debug/site_scanner.hpp"
#include "vmm/debug/vcpu_debug.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {

// MOV DRs emulated back to back at one boundary before the guest runs again.
inline constexpr unsigned kMaxEmulatedInARow = 64;

// Host hits collected under the lock and reported to the owners after it is released.
struct Notifications {
  std::array<HostHit, bp::kMaxSlots> hits{};
  unsigned hit_count = 0;
  bool stop = false;  // an overflow asked to stop
  bool guest_delivered = false;
  StopInfo stop_info;
};

struct DebugController::State {
  State(Machine& m, ProbeSource p, const DebugOptions& o)
      : machine(m),
        probe_source(std::move(p)),
        options(o),
        manager(bp::ManagerConfig{static_cast<std::uint32_t>(m.vcpu_count()),
                                  bp::SlotLayout::mixed(std::clamp<std::uint32_t>(
                                      o.slots, bp::kX86HardwareSlots, bp::kMaxHostSlots))}),
        sites(m.memory()),
        pages(m.memory_map()) {}

  Machine& machine;
  ProbeSource probe_source;
  const ProbeResult* probe = nullptr;  // set by the first answers()
  DebugOptions options;
  std::mutex mutex;
  bp::BreakpointManager manager;
  // VM-wide engine state (memory is shared by the vCPUs).
  TrapSites sites;
  PageGuard pages;
  TableGuards tables;
  ImageCode image_code;  // instruction starts: where an INT3 may go; system instructions
  // Derived from the probe's answers (false until answers() ran).
  bool payload = false;
  bool gd_trap = false;      // MOV DR exits through DR7.GD
  bool sw_bp_exits = false;  // planted INT3 arrives as KVM_EXIT_DEBUG #BP (USE_SW_BP)
  bool sync_sregs = false;   // KVM_CAP_SYNC_REGS: CR3 comes with every exit, no ioctl
  bool sync_regs = false;    // ... and the general-purpose registers (--exact reads them per step)
  bool block_irq = false;    // KVM_GUESTDBG_BLOCKIRQ exists (KVM_CAP_SET_GUEST_DEBUG2)
  std::unordered_map<bp::TargetId, HitCallback> hit_callbacks;
  StopCallback stop_callback;
  std::vector<std::unique_ptr<VcpuDebug>> vcpus;
  std::atomic<bool> warned_untrapped{false};
  std::atomic<bool> warned_arm{false};
  // Planted at the first entry, once the image is in memory (Machine::boot may come later).
  std::vector<MovDrSite> mov_dr_sites;
  std::atomic<bool> sites_planted{false};
  bool system_sites_planted = false;  // at the first page engine (image_code.system_sites)

  // The probe's answers and the settings derived from them (lock held). The first call runs the
  // probe; trapping MOV DR through DR7.GD then re-arms every vCPU.
  const ProbeResult& answers();

  void plant_mov_dr_sites();

  void plant_system_sites();

  // ---- helpers (called with the lock held unless noted) ----
  VcpuDebug& at(VcpuRunner& runner) { return *vcpus[runner.index()]; }
  GuestMemory& memory() { return machine.memory(); }

  void warn(std::atomic<bool>& once, const std::string& text) {
    if (options.log && !once.exchange(true)) fmt::print(options.log, "drvm: {}\n", text);
  }

  void mark_all_dirty();

  // ---- which engines run the vCPU ----
  // Whether KVM_GUESTDBG_SINGLESTEP is in force on the vCPU (KVM then owns RFLAGS.TF).
  static bool kvm_steps(const VcpuDebug& s) {
    return s.debug_applied && (s.applied.control & KVM_GUESTDBG_SINGLESTEP);
  }
  // Whether the next entry must single-step.
  static bool stepping(const VcpuDebug& s) {
    return s.single_step.on() || s.step.over || s.step.for_debugger || s.pages.open();
  }
  // Whether a drvm step of this vCPU is under way (between setting it up and its exit).
  static bool step_in_flight(const VcpuDebug& s) { return s.step.in_flight() || s.completing; }

  // The guest's own RFLAGS.TF: KVM_GET_REGS hides it while KVM single-steps for drvm. The
  // single-step engine keeps it all along; a drvm step kept it when it began (Stepper::begin).
  static bool guest_tf(const VcpuDebug& s, const kvm_regs& regs) {
    if (s.single_step.on()) return s.single_step.guest_tf();
    if (kvm_steps(s)) return s.step.tf_after;
    return (regs.rflags & x86::kRflagsTf) != 0;
  }

  void set_stepping(VcpuDebug& s, bool on);

  // The next entry re-arms and looks at the layout again (the stack or a table may have moved).
  static void recheck_layout(VcpuDebug& s) {
    s.layout_changed = true;
    s.dirty.store(true, std::memory_order_release);
  }

  // The vCPU single-steps from its next instruction on; every slot is re-armed for it then.
  void step_from_now(VcpuDebug& s);

  // ---- arming ----
  void disarm(VcpuDebug& s);

  // Gives each slot of the vCPU's effective set an engine: the single-step engine when the vCPU
  // steps (--exact, or a layout the page engines cannot serve), else a hardware slot, then INT3
  // for instruction breakpoints and a page engine for data breakpoints.
  void rearm(VcpuDebug& s, bool force);

  void apply_guest_debug(VcpuDebug& s);

  // ---- injection ----
  void inject(VcpuDebug& s, std::uint8_t vector, std::optional<std::uint32_t> error_code,
              std::optional<std::uint64_t> dr6 = std::nullopt);

  // KVM cannot push an exception frame onto a page drvm protects (its delivery does not exit to
  // userspace: the guest would triple-fault). When the frame lands on such a page, drvm delivers
  // the exception itself, as the processor does for a 64-bit interrupt or trap gate without a
  // privilege change or IST (SDM Vol. 3, 6.14); other cases go to KVM.
  // --exact delivers every exception it can itself too: KVM's own delivery clears the trap flag
  // its single-stepping relies on, so the handler would run unchecked up to its IRET.
  bool deliver_in_software(VcpuDebug& s, std::uint8_t vector,
                           std::optional<std::uint32_t> error_code);

  // ---- dispatch ----
  void route(VcpuDebug& s, const bp::DispatchResult& out, std::uint64_t rip, StopKind kind,
             const std::optional<AccessInfo>& access, Notifications& n);

  // Calls the owners' callbacks without the lock; returns whether the vCPU must stop.
  bool notify(Notifications& n);

  // Parks the vCPU and tells the stop callback (no lock held).
  ExitAction stop_vcpu(VcpuDebug& s, const StopInfo& info);

  // ---- the guest's MOV DR ----
  // Emulates the MOV DR `move` at RIP. Returns false when an exception was injected instead.
  bool emulate_mov_dr(VcpuDebug& s, const DecodedMove& move);

  // The guest's TF single-step after an instruction drvm completed itself (emulated MOV DR).
  void guest_single_step_trap(VcpuDebug& s, Notifications& n, std::uint64_t rip);

  // The safety net (GuestDrAccess::check_untrapped), with its one-time warning.
  void check_untrapped(VcpuDebug& s);

  void check_untrapped_locked(VcpuDebug& s);

  // ---- data accesses of the instruction in flight ----
  void match_access(VcpuDebug& s, const AccessInfo& access, std::uint64_t candidates);

  void add_match(VcpuDebug& s, const AccessMatch& match);

  // The instruction that made the collected accesses completed: report them (trap-like), with the
  // guest's own single-step when drvm's step swallowed it.
  void finish_instruction(VcpuDebug& s, const kvm_regs& regs, bool guest_step, Notifications& n);

  // ---- instruction boundaries ----
  // Instruction breakpoints at `linear` before the instruction runs (fault-like). Honours RF.
  void check_exec(VcpuDebug& s, std::uint64_t linear, const kvm_regs& regs, Notifications& n);

  // Starts one drvm step of the instruction at RIP (Stepper::begin).
  void begin_step(VcpuDebug& s, const kvm_regs& regs, const kvm_sregs& sregs);

  // A drvm step finished (the instruction retired or faulted): its decoded accesses are matched.
  void end_step(VcpuDebug& s, const kvm_regs& after);

  // The vCPU is at an instruction boundary drvm intercepted (trap site, hardware instruction
  // breakpoint, a step of the single-step engine): report instruction breakpoints, emulate MOV DR,
  // or set up the step that runs the instruction. Called without the lock.
  ExitAction boundary(VcpuDebug& s);

  ExitAction handle_step_exit(VcpuDebug& s);

  // A page engine's page was accessed (MMIO exit on RAM): complete it, then see whether it touched
  // a watch of this vCPU.
  std::optional<ExitAction> handle_mmio(VcpuDebug& s, kvm_run& run);

  ExitAction finish_completion(VcpuDebug& s);

  // KVM could not emulate an instruction: a planted INT3 where KVM cannot intercept #BP, or an
  // instruction fetched from an unmapped (read-watched) page.
  std::optional<ExitAction> handle_emulation_failure(VcpuDebug& s);

  void check_cr3(VcpuDebug& s, const kvm_sregs& sregs);

  std::optional<ExitAction> handle_debug_exit(VcpuDebug& s, kvm_run& run);

  // The guest's own #DB, which KVM hands to userspace instead of delivering it while drvm uses
  // KVM_GUESTDBG_USE_HW_BP or SINGLESTEP (VMX and SVM intercept every #DB then): its TF
  // single-step (DR6.BS, RIP past the instruction) or ICEBP/INT1 (no status bit; VMX exits with
  // RIP still at the 0xF1 byte, as the instruction is intercepted rather than executed).
  ExitAction reflect_guest_debug_exception(VcpuDebug& s, const kvm_debug_exit_arch& arch);
};

}  // namespace drvm::vmm::debug
