#include "vmm/debug/debug_controller.hpp"

#include <sys/ioctl.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpcore/manager.hpp"
#include "vmm/debug/access_decoder.hpp"
#include "vmm/debug/engines/system_layout.hpp"
#include "vmm/debug/flags_instructions.hpp"
#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/debug/site_scanner.hpp"
#include "vmm/debug/vcpu_debug.hpp"
#include "vmm/x86/event_delivery.hpp"
#include "vmm/x86/paging.hpp"
#include "vmm/x86/software_interrupts.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {
namespace {

// MOV DRs emulated back to back at one boundary before the guest runs again.
constexpr unsigned kMaxEmulatedInARow = 64;

// Host hits collected under the lock and reported to the owners after it is released.
struct Notifications {
  std::array<HostHit, bp::kMaxSlots> hits{};
  unsigned hit_count = 0;
  bool stop = false;  // an overflow asked to stop
  bool guest_delivered = false;
  StopInfo stop_info;
};

// The control bits that decide how linear addresses translate (besides CR3).
std::uint64_t paging_mode(const kvm_sregs& sregs) {
  return (sregs.cr0 & (std::uint64_t{1} << 31)) | (sregs.cr4 & 0x1030) |
         (sregs.efer & x86::kEferLma);
}

}  // namespace

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
  const ProbeResult& answers() {
    if (probe != nullptr) return *probe;
    probe = &probe_source();
    if (probe->db_injection_payload.yes()) {
      kvm_enable_cap enable{};
      enable.cap = KVM_CAP_EXCEPTION_PAYLOAD;
      enable.args[0] = 1;
      payload = ::ioctl(machine.vm().fd(), KVM_ENABLE_CAP, &enable) == 0;
    }
    gd_trap = !options.exact && probe->gd_exit.yes();
    sw_bp_exits = probe->sw_bp_debug_exit.yes();
    if (gd_trap) mark_all_dirty();
    return *probe;
  }

  void plant_mov_dr_sites() {
    std::lock_guard lock(mutex);
    if (sites_planted.load()) return;
    for (const MovDrSite& site : mov_dr_sites) sites.add_mov_dr(site.gpa);
    sites_planted.store(true);
  }

  void plant_system_sites() {
    if (system_sites_planted) return;
    system_sites_planted = true;
    for (std::uint64_t gpa : image_code.system_sites) sites.add_system(gpa);
  }

  // ---- helpers (called with the lock held unless noted) ----
  VcpuDebug& at(VcpuRunner& runner) { return *vcpus[runner.index()]; }
  GuestMemory& memory() { return machine.memory(); }

  void warn(std::atomic<bool>& once, const std::string& text) {
    if (options.log && !once.exchange(true)) fmt::print(options.log, "drvm: {}\n", text);
  }

  void mark_all_dirty() {
    for (auto& s : vcpus) {
      s->dirty.store(true, std::memory_order_release);
      if (s->thread.load() != std::this_thread::get_id()) s->runner.kick();
    }
  }

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

  void set_stepping(VcpuDebug& s, bool on) {
    if (on) {
      s.single_step.enter(s.registers, guest_tf(s, s.registers.regs()));
    } else {
      s.single_step.leave();
    }
  }

  // The next entry re-arms and looks at the layout again (the stack or a table may have moved).
  static void recheck_layout(VcpuDebug& s) {
    s.layout_changed = true;
    s.dirty.store(true, std::memory_order_release);
  }

  // The vCPU single-steps from its next instruction on; every slot is re-armed for it then.
  void step_from_now(VcpuDebug& s) {
    disarm(s);
    set_stepping(s, true);
    s.armed = false;
    s.dirty.store(true, std::memory_order_release);
  }

  // ---- arming ----
  void disarm(VcpuDebug& s) {
    s.hardware.disarm();
    s.int3.disarm();
    s.pages.disarm();
    s.engine.fill(Engine::kNone);
    s.exec_slots = s.data_slots = 0;
  }

  // Gives each slot of the vCPU's effective set an engine: the single-step engine when the vCPU
  // steps (--exact, or a layout the page engines cannot serve), else a hardware slot, then INT3
  // for instruction breakpoints and a page engine for data breakpoints.
  void rearm(VcpuDebug& s, bool force) {
    s.dirty.store(false, std::memory_order_release);
    s.dr.mirror();  // a debugger or the safety net may have changed the guest's DRs
    const bp::EffectiveSet& eff = manager.schedule(s.index);
    const kvm_sregs sregs = s.runner.vcpu().sregs();
    const std::uint64_t table_generation = tables.generation.load();
    const bool same_translation =
        eff.generation == s.armed_generation && sregs.cr3 == s.armed_cr3 &&
        paging_mode(sregs) == s.armed_paging_mode && table_generation == s.armed_table_generation;
    const bool layout_changed = std::exchange(s.layout_changed, false);
    if (s.armed && !force && !layout_changed && same_translation) return;
    const ProbeResult* can = eff.used_mask && !options.exact ? &answers() : nullptr;
    const bool stepping_wanted =
        options.exact || s.single_step.on() ||
        (can && layout_needs_stepping(memory(), eff, sregs, s.registers.regs(), *can));
    // A system instruction that moved no watch onto a system page (LGDT elsewhere): as armed.
    if (s.armed && !force && layout_changed && same_translation &&
        stepping_wanted == s.single_step.on()) {
      return;
    }
    if (stepping_wanted && !s.single_step.on() && step_in_flight(s)) {
      recheck_layout(s);  // after the step's exit
      return;
    }
    disarm(s);
    set_stepping(s, stepping_wanted);
    kvm_guest_debug wanted{};
    wanted.control = KVM_GUESTDBG_ENABLE;
    for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      const bp::BpAttr& attr = eff.slot_attr[slot];
      const bool exec = attr.type == bp::BpType::kExecute;
      (exec ? s.exec_slots : s.data_slots) |= std::uint64_t{1} << slot;
      if (s.single_step.on()) {
        s.engine[slot] = Engine::kSingleStep;
        continue;
      }
      if (s.hardware.arm(slot, attr, *can)) {
        s.engine[slot] = Engine::kHardware;
        continue;
      }
      const auto gpa = linear_to_gpa(memory(), sregs, attr.addr, attr.len);
      if (!gpa) continue;  // not mapped now: re-tried at the next CR3 change or event change
      s.pages.guard_tables(memory(), sregs, attr.addr);
      if (exec) {
        if (s.int3.arm(slot, *gpa)) s.engine[slot] = Engine::kInt3;
        continue;
      }
      s.engine[slot] = s.pages.arm(slot, *gpa, attr, *can);
      plant_system_sites();
    }
    if (gd_trap) {
      wanted.control |= KVM_GUESTDBG_USE_HW_BP;
      wanted.arch.debugreg[7] |= bp::dr7::kGd;
    }
    // Until the probe has said that INT3 does not exit with USE_SW_BP, ask for it: a planted trap
    // must never reach the guest's #BP handler.
    if ((probe == nullptr || sw_bp_exits) && !sites.empty()) {
      wanted.control |= KVM_GUESTDBG_USE_SW_BP;
    }
    s.wanted = wanted;
    s.armed = true;
    s.armed_generation = eff.generation;
    s.armed_cr3 = sregs.cr3;
    s.armed_paging_mode = paging_mode(sregs);
    s.armed_table_generation = table_generation;
    s.counters.rearms.fetch_add(1, std::memory_order_relaxed);
  }

  void apply_guest_debug(VcpuDebug& s) {
    kvm_guest_debug debug = s.wanted;
    s.hardware.program(debug);
    if (stepping(s)) debug.control |= KVM_GUESTDBG_SINGLESTEP;
    // A step drvm takes for itself (over a breakpoint, an access to a protected page, a debugger's
    // stepi) must end after that instruction, not at the first one of an interrupt handler that
    // became pending meanwhile: interrupts wait while it steps (QEMU's gdbstub does the same).
    // --exact steps the guest through everything, handlers included, so it does not block them.
    if (block_irq && !s.single_step.on() && (debug.control & KVM_GUESTDBG_SINGLESTEP)) {
      debug.control |= KVM_GUESTDBG_BLOCKIRQ;
    }
    if (debug.control == KVM_GUESTDBG_ENABLE) debug.control = 0;  // nothing to do: plain run
    if (s.debug_applied && std::memcmp(&debug, &s.applied, sizeof debug) == 0) return;
    s.runner.vcpu().set_guest_debug(debug);
    s.applied = debug;
    s.debug_applied = true;
  }

  // ---- injection ----
  void inject(VcpuDebug& s, std::uint8_t vector, std::optional<std::uint32_t> error_code,
              std::optional<std::uint64_t> dr6 = std::nullopt) {
    if (dr6) {
      // The guest reads DR6 through drvm; KVM's copy is kept equal for code drvm never saw.
      s.dr.set_dr6(*dr6);
      s.counters.guest_debug_exceptions.fetch_add(1, std::memory_order_relaxed);
    }
    if (!s.single_step.on() && !step_in_flight(s) &&
        frame_on_guarded_page(memory(), pages, s.registers.sregs(), s.registers.regs())) {
      // The handler would run with its stack on a protected page: it steps from its first
      // instruction on (the layout check at the next re-arm would decide so anyway).
      step_from_now(s);
    }
    if (deliver_in_software(s, vector, error_code)) return;
    answers();  // whether KVM takes a DR6 payload (KVM_CAP_EXCEPTION_PAYLOAD)
    queue_event(s.runner.vcpu(), Exception{vector, error_code},
                dr6 ? std::optional(*dr6 & bp::dr6::kWritable) : std::nullopt, payload);
    s.single_step.set_guest_tf(false);  // the delivery clears TF
    s.single_step.prime = false;        // --exact: the handler's entry is decoded after it
    s.step.drop_decode();
  }

  // KVM cannot push an exception frame onto a page drvm protects (its delivery does not exit to
  // userspace: the guest would triple-fault). When the frame lands on such a page, drvm delivers
  // the exception itself, as the processor does for a 64-bit interrupt or trap gate without a
  // privilege change or IST (SDM Vol. 3, 6.14); other cases go to KVM.
  // --exact delivers every exception it can itself too: KVM's own delivery clears the trap flag
  // its single-stepping relies on, so the handler would run unchecked up to its IRET.
  bool deliver_in_software(VcpuDebug& s, std::uint8_t vector,
                           std::optional<std::uint32_t> error_code) {
    kvm_regs regs = s.registers.regs();
    const kvm_sregs sregs = s.registers.sregs();
    // While KVM steps for drvm it hides the guest's TF, which the frame must hold.
    if (!s.single_step.on() && !frame_on_guarded_page(memory(), pages, sregs, regs) &&
        !(kvm_steps(s) && s.step.tf_after)) {
      return false;
    }
    const std::uint64_t pushed_rflags =
        (regs.rflags & ~x86::kRflagsTf) | (guest_tf(s, regs) ? x86::kRflagsTf : 0);
    if (!deliver_without_privilege_change(memory(), sregs, regs, Exception{vector, error_code},
                                          pushed_rflags)) {
      return false;
    }
    s.single_step.set_guest_tf(false);
    s.registers.set_regs(regs);
    s.step.drop_decode();
    s.debug_applied = false;  // KVM re-arms its single-step at the new RIP
    s.single_step.prime = s.single_step.on();
    return true;
  }

  // ---- dispatch ----
  void route(VcpuDebug& s, const bp::DispatchResult& out, std::uint64_t rip, StopKind kind,
             const std::optional<AccessInfo>& access, Notifications& n) {
    for (unsigned i = 0; i < out.fired_count; ++i) {
      const bp::FiredEvent& fired = out.fired[i];
      HostHit& hit = n.hits[n.hit_count++];
      hit = HostHit{s.index, fired.event, fired.owner, rip, access, 0, fired.overflow};
      if (auto reading = manager.read(fired.event)) hit.count = reading.value().value;
      if (fired.action == bp::HitAction::kStop && fired.overflow && !n.stop) {
        n.stop = true;
        n.stop_info = StopInfo{kind, rip, fired.event, fired.owner, access};
      }
    }
    s.counters.host_hits.fetch_add(out.fired_count, std::memory_order_relaxed);
    if (out.deliver_to_guest) {
      inject(s, x86::kVectorDb, std::nullopt, out.guest_dr6);
      n.guest_delivered = true;
    }
  }

  // Calls the owners' callbacks without the lock; returns whether the vCPU must stop.
  bool notify(Notifications& n) {
    bool stop = n.stop;
    for (unsigned i = 0; i < n.hit_count; ++i) {
      HitCallback callback;
      {
        std::lock_guard lock(mutex);
        auto it = hit_callbacks.find(n.hits[i].owner);
        if (it != hit_callbacks.end()) callback = it->second;
      }
      if (callback && callback(n.hits[i]) && !stop) {
        stop = true;
        const HostHit& hit = n.hits[i];
        n.stop_info = StopInfo{hit.access ? StopKind::kWatchpoint : StopKind::kBreakpoint, hit.rip,
                               hit.event, hit.owner, hit.access};
      }
    }
    return stop;
  }

  // Parks the vCPU and tells the stop callback (no lock held).
  ExitAction stop_vcpu(VcpuDebug& s, const StopInfo& info) {
    StopCallback callback;
    {
      std::lock_guard lock(mutex);
      callback = stop_callback;
      s.cancel_stop = false;
    }
    if (callback) callback(s.index, info);
    std::lock_guard lock(mutex);
    if (s.cancel_stop) {
      s.cancel_stop = false;
      return ExitAction::kResume;
    }
    return ExitAction::kPause;
  }

  // ---- the guest's MOV DR ----
  // Emulates the MOV DR `move` at RIP. Returns false when an exception was injected instead.
  bool emulate_mov_dr(VcpuDebug& s, const DecodedMove& move) {
    s.counters.dr_emulations.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t rip = s.registers.regs().rip;
    const DrEmulation done = s.dr.emulate(s.registers, move);
    if (done.wrote) s.dirty.store(true, std::memory_order_release);
    switch (done.action) {
      case bp::DrAccessResult::Action::kOk:
        if (done.arm_error) {
          warn(warned_arm,
               fmt::format("vCPU {}: the guest's breakpoint could not be armed at RIP {:#x}: {}; "
                           "host events hold the slots (raise --slots)",
                           s.index, rip, bp::error_message(*done.arm_error)));
        }
        return true;
      case bp::DrAccessResult::Action::kInjectUd:
        inject(s, x86::kVectorUd, std::nullopt);
        return false;
      case bp::DrAccessResult::Action::kInjectGp:
        inject(s, x86::kVectorGp, 0);
        return false;
      case bp::DrAccessResult::Action::kInjectDb:
        inject(s, x86::kVectorDb, std::nullopt, done.dr6);
        return false;
    }
    return false;
  }

  // The guest's TF single-step after an instruction drvm completed itself (emulated MOV DR).
  void guest_single_step_trap(VcpuDebug& s, Notifications& n, std::uint64_t rip) {
    bp::DispatchResult out;
    manager.dispatch(s.index, bp::DbHit{0, bp::dr6::kBs}, out);
    route(s, out, rip, StopKind::kStep, std::nullopt, n);
  }

  // The safety net (GuestDrAccess::check_untrapped), with its one-time warning.
  void check_untrapped(VcpuDebug& s) {
    const UntrappedChange change = s.dr.check_untrapped();
    if (!change.changed) return;
    if (change.imported) {
      s.counters.untrapped_dr_changes.fetch_add(1, std::memory_order_relaxed);
      warn(warned_untrapped,
           fmt::format("vCPU {}: the guest changed its debug registers without drvm seeing the "
                       "MOV DR (noticed at RIP {:#x}); imported them. Use --exact for code that "
                       "is not in the image's executable segments",
                       s.index, s.registers.regs().rip));
    }
    s.dirty.store(true, std::memory_order_release);
  }

  void check_untrapped_locked(VcpuDebug& s) {
    std::lock_guard lock(mutex);
    check_untrapped(s);
  }

  // ---- data accesses of the instruction in flight ----
  void match_access(VcpuDebug& s, const AccessInfo& access, std::uint64_t candidates) {
    const bp::EffectiveSet& eff = manager.effective(s.index);
    for (std::uint64_t m = candidates; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      const bp::BpAttr& attr = eff.slot_attr[slot];
      if (bp::matches(attr, access.linear, access.size, access.type)) {
        s.access_slots |= std::uint64_t{1} << slot;
        if (s.first_access) continue;
        s.first_access = access;
        if (access.size > 8) {
          // A REP string range: report the element that touched the watch.
          const std::uint64_t first = std::max(access.linear, attr.addr);
          s.first_access->linear = first;
          s.first_access->size = 1;
        }
      }
    }
  }

  void add_match(VcpuDebug& s, const AccessMatch& match) {
    s.access_slots |= match.slots;
    if (!s.first_access && match.first) s.first_access = match.first;
  }

  // The instruction that made the collected accesses completed: report them (trap-like), with the
  // guest's own single-step when drvm's step swallowed it.
  void finish_instruction(VcpuDebug& s, const kvm_regs& regs, bool guest_step, Notifications& n) {
    const std::uint64_t hit = s.access_slots;
    if (hit == 0 && !guest_step) return;
    bp::DispatchResult out;
    manager.dispatch(s.index, bp::DbHit{hit, guest_step ? bp::dr6::kBs : 0}, out);
    route(s, out, regs.rip, hit ? StopKind::kWatchpoint : StopKind::kStep, s.first_access, n);
    s.access_slots = 0;
    s.first_access.reset();
  }

  // ---- instruction boundaries ----
  // Instruction breakpoints at `linear` before the instruction runs (fault-like). Honours RF.
  void check_exec(VcpuDebug& s, std::uint64_t linear, const kvm_regs& regs, Notifications& n) {
    if (s.skip_exec_at == linear || (regs.rflags & x86::kRflagsRf)) return;
    const bp::EffectiveSet& eff = manager.effective(s.index);
    std::uint64_t hit = 0;
    for (std::uint64_t m = s.exec_slots; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      if (eff.slot_attr[slot].addr == linear) hit |= std::uint64_t{1} << slot;
    }
    if (!hit) return;
    bp::DispatchResult out;
    manager.dispatch(s.index, bp::DbHit{hit, 0}, out);
    route(s, out, regs.rip, StopKind::kBreakpoint, std::nullopt, n);
    if (!n.guest_delivered) s.skip_exec_at = linear;  // the host let it run: report it once
  }

  // Starts one drvm step of the instruction at RIP (Stepper::begin).
  void begin_step(VcpuDebug& s, const kvm_regs& regs, const kvm_sregs& sregs) {
    s.single_step.cancel_restore_tf();  // the TF of this step's end decides
    s.counters.single_steps.fetch_add(1, std::memory_order_relaxed);
    s.step.begin(regs, sregs, guest_tf(s, regs), s.single_step.on(), manager.effective(s.index),
                 s.data_slots);
  }

  // A drvm step finished (the instruction retired or faulted): its decoded accesses are matched.
  void end_step(VcpuDebug& s, const kvm_regs& after) {
    const std::uint64_t start = s.step.start_rip();
    const StepAccesses accesses = s.step.end(after);
    for (std::size_t i = 0; i < accesses.count; ++i) {
      const MemoryAccess& access = accesses.list[i];
      match_access(s, AccessInfo{access.type, access.linear, access.size, {}, {}}, s.data_slots);
    }
    if (after.rip != start) s.skip_exec_at = kNoAddress;
  }

  // The vCPU is at an instruction boundary drvm intercepted (trap site, hardware instruction
  // breakpoint, a step of the single-step engine): report instruction breakpoints, emulate MOV DR,
  // or set up the step that runs the instruction. Called without the lock.
  ExitAction boundary(VcpuDebug& s) {
    for (unsigned emulated = 0; emulated < kMaxEmulatedInARow; ++emulated) {
      Notifications n;
      kvm_regs regs = s.registers.regs();
      const kvm_sregs sregs = s.registers.sregs();
      const std::uint64_t linear = sregs.cs.base + regs.rip;
      if (s.single_step.check_due(options.exact)) {
        // The layout that made this vCPU step may be gone (the stack moved on, a table was
        // moved): back to the page engines, armed before the next entry.
        std::lock_guard lock(mutex);
        const bp::EffectiveSet& eff = manager.schedule(s.index);
        if (!s.single_step.guest_tf() &&
            (!eff.used_mask || !layout_needs_stepping(memory(), eff, sregs, regs, answers()))) {
          set_stepping(s, false);
          s.armed = false;  // every slot goes back to its engine at the next entry
          s.dirty.store(true, std::memory_order_release);
          return ExitAction::kResume;
        }
      }
      {
        std::lock_guard lock(mutex);
        if (s.skip_exec_at != linear) s.skip_exec_at = kNoAddress;
        check_exec(s, linear, regs, n);
      }
      if (notify(n)) {
        s.skip_exec_at = linear;
        return stop_vcpu(s, n.stop_info);
      }
      if (n.guest_delivered) return ExitAction::kResume;  // the #DB comes before the instruction

      std::lock_guard lock(mutex);
      std::array<std::uint8_t, kMaxInstruction> bytes{};
      const std::size_t size = sites.fetch_instruction(regs, sregs, bytes);
      const bool long_mode = in_64bit_mode(sregs);
      const auto move = decode_control_move(bytes.data(), size, long_mode);
      const auto gpa = linear_to_gpa(memory(), sregs, linear);
      const TrapSites::Site* site = gpa ? sites.find(*gpa) : nullptr;
      const bool trapped_move = move && move->kind != ControlMove::kToCr &&
                                (s.single_step.on() || gd_trap || (site && site->mov_dr));
      if (trapped_move) {
        if (!emulate_mov_dr(s, *move)) return ExitAction::kResume;
        regs = s.registers.regs();
        s.skip_exec_at = kNoAddress;
        if (guest_tf(s, regs)) {
          Notifications step_n;
          guest_single_step_trap(s, step_n, regs.rip);
          return ExitAction::kResume;
        }
        if (s.step.for_debugger) {
          s.step.for_debugger = false;
          mutex.unlock();
          const ExitAction action = stop_vcpu(s, StopInfo{StopKind::kStep, regs.rip, {}, 0, {}});
          mutex.lock();
          return action;
        }
        if (s.single_step.on()) continue;  // the next instruction is a new boundary
        return ExitAction::kResume;
      }
      if (s.single_step.on() && size > 0 && bytes[0] == TrapSites::kInt3) {
        // INT3: #BP delivered here, so that the frame holds the guest's TF.
        regs.rip += 1;
        s.registers.set_regs(regs);
        if (deliver_in_software(s, x86::kVectorBp, std::nullopt)) return ExitAction::kResume;
        regs.rip -= 1;
        s.registers.set_regs(regs);
      }
      // PUSHF, POPF and IRET are executed by drvm: KVM single-steps through RFLAGS.TF, which
      // POPF and IRET load (a step of them would run on past them) and PUSHF would store.
      kvm_regs with_tf = regs;
      with_tf.rflags = (regs.rflags & ~x86::kRflagsTf) | (guest_tf(s, regs) ? x86::kRflagsTf : 0);
      if (auto loaded =
              emulate_flags_instruction(std::span(bytes.data(), size), with_tf, sregs, memory())) {
        // The guest's TF as it was before the instruction decides its single-step trap (SDM
        // Vol. 3, 17.3.1.4: TF loaded by POPF/IRET takes effect after the next instruction).
        const bool tf_loaded = (loaded->regs.rflags & x86::kRflagsTf) != 0;
        if (s.single_step.on()) {
          s.single_step.set_guest_tf(tf_loaded);
          loaded->regs.rflags &= ~x86::kRflagsTf;
        } else {
          s.step.tf_after = tf_loaded;
        }
        s.registers.set_regs(loaded->regs);
        s.skip_exec_at = kNoAddress;
        const MemoryAccess& stack = loaded->stack;
        match_access(s, AccessInfo{stack.type, stack.linear, stack.size, {}, {}}, s.data_slots);
        Notifications done;
        finish_instruction(s, loaded->regs, (with_tf.rflags & x86::kRflagsTf) != 0, done);
        const bool debugger_step = std::exchange(s.step.for_debugger, false);
        mutex.unlock();
        ExitAction action = ExitAction::kResume;
        if (notify(done)) {
          action = stop_vcpu(s, done.stop_info);
        } else if (debugger_step) {
          action = stop_vcpu(s, StopInfo{StopKind::kStep, loaded->regs.rip, {}, 0, {}});
        }
        mutex.lock();
        if (action == ExitAction::kPause || done.guest_delivered || debugger_step) return action;
        if (s.single_step.on()) continue;  // the next instruction is a new boundary
        if (s.step.tf_after) {
          // The guest single-steps from here: the single-step engine makes its traps (KVM's own
          // TF handling skips some after a TF it did not load itself).
          step_from_now(s);  // the next instruction is decoded first
          return ExitAction::kResume;
        }
        // IRET: the stack moved.
        if (is_system_instruction(bytes.data(), size, long_mode)) recheck_layout(s);
        return ExitAction::kResume;
      }
      // Run the instruction with one step: lift our trap under it for that step, and quiet the
      // hardware instruction breakpoints on it (they were just reported).
      if (site && !site->lifted) s.int3.lift(*gpa);
      if (is_system_instruction(bytes.data(), size, long_mode)) {
        s.rearm_after_step = true;  // a table may now be on a protected page (or off one)
      }
      const bp::EffectiveSet& eff = manager.effective(s.index);
      std::uint64_t here = 0;
      for (std::uint64_t m = s.exec_slots; m; m &= m - 1) {
        const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
        if (eff.slot_attr[slot].addr == linear) here |= std::uint64_t{1} << slot;
      }
      s.hardware.suppress_for_step(here);
      s.step.over = true;
      begin_step(s, regs, sregs);
      return ExitAction::kResume;
    }
    return ExitAction::kResume;
  }

  ExitAction handle_step_exit(VcpuDebug& s) {
    Notifications n;
    kvm_regs after = s.registers.regs();
    bool debugger_step = false;
    {
      std::lock_guard lock(mutex);
      const std::uint64_t start = s.step.start_rip();
      end_step(s, after);
      if (std::exchange(s.rearm_after_step, false)) {
        recheck_layout(s);
        s.single_step.check_now();  // and see whether stepping is still needed
      }
      s.step.resume_cut_rep(after);
      // Also when the step ended in a protected access (KVM may run past a step it owes, into
      // the next instruction: a REP string whose last iteration touched the page).
      if (after.rip == start || s.completing)
        s.step.retire_finished_rep(after, s.registers.sregs());
      s.completing = false;
      finish_instruction(s, after, s.step.guest_tf, n);
      s.step.guest_tf = false;
      // KVM drops the guest's TF with the step: set it again once the step is off (before_run).
      if (!s.single_step.on() && s.step.tf_after && !n.guest_delivered) {
        s.single_step.restore_tf_later();
      }
      debugger_step = std::exchange(s.step.for_debugger, false);
    }
    if (notify(n)) return stop_vcpu(s, n.stop_info);
    if (debugger_step) return stop_vcpu(s, StopInfo{StopKind::kStep, after.rip, {}, 0, {}});
    if (s.single_step.on() && !n.guest_delivered) return boundary(s);
    return ExitAction::kResume;
  }

  // A page engine's page was accessed (MMIO exit on RAM): complete it, then see whether it touched
  // a watch of this vCPU.
  std::optional<ExitAction> handle_mmio(VcpuDebug& s, kvm_run& run) {
    if (memory().host(run.mmio.phys_addr, run.mmio.len) == nullptr) return std::nullopt;  // device
    std::lock_guard lock(mutex);
    const std::optional<CompletedAccess> access = s.pages.complete(memory(), run);
    if (!access) return std::nullopt;
    s.counters.protected_accesses.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t before = s.access_slots;
    if (access->table_edit) {
      // A paging-structure edit: translations of watches and planted breakpoints may change.
      tables.generation.fetch_add(1);
      mark_all_dirty();
    }
    add_match(s, s.pages.match(manager.effective(s.index), *access));
    // A read exits before its iteration ends, and KVM would run the next iterations before
    // returning: stop the REP after this one. (A write exits after its iteration.)
    if (s.access_slots != before && !access->write) s.step.cut_rep_at_rip();
    // During drvm's own step too, and during the guest's own (TF): after a write KVM forgets the
    // step it owes, so drvm reports it.
    const bool guest_step = !stepping(s) && (s.registers.regs().rflags & x86::kRflagsTf);
    if (s.access_slots != before || s.completing || stepping(s) || guest_step) {
      // Trap-like: let KVM finish the instruction (immediate_exit), then report.
      s.completing = true;
      s.completion_entered = false;
    }
    return ExitAction::kResume;
  }

  ExitAction finish_completion(VcpuDebug& s) {
    Notifications n;
    kvm_regs regs = s.registers.regs();
    {
      std::lock_guard lock(mutex);
      s.completing = false;
      s.step.resume_cut_rep(regs);
      if (s.access_slots) s.step.retire_finished_rep(regs, s.registers.sregs());
      // The guest's own TF trap of this instruction joins the data hit in one #DB (KVM's queued
      // one is replaced by the injection).
      finish_instruction(s, regs, (regs.rflags & x86::kRflagsTf) != 0, n);
    }
    if (notify(n)) return stop_vcpu(s, n.stop_info);
    return ExitAction::kResume;
  }

  // KVM could not emulate an instruction: a planted INT3 where KVM cannot intercept #BP, or an
  // instruction fetched from an unmapped (read-watched) page.
  std::optional<ExitAction> handle_emulation_failure(VcpuDebug& s) {
    const kvm_regs regs = s.registers.regs();
    const kvm_sregs sregs = s.registers.sregs();
    {
      std::lock_guard lock(mutex);
      const auto gpa = linear_to_gpa(memory(), sregs, sregs.cs.base + regs.rip);
      if (!gpa) return std::nullopt;
      const TrapSites::Site* site = sites.find(*gpa);
      const bool at_site = site && !site->lifted;
      const bool unmapped_page = pages.wanted(PageGuard::page_of(*gpa)) == PageAccess::kUnmapped;
      // Anything else (an INT3 drvm did not plant: #BP for the guest) takes the default path.
      if (!at_site && !unmapped_page) return std::nullopt;
      s.counters.trap_exits.fetch_add(1, std::memory_order_relaxed);
      check_cr3(s, sregs);
    }
    if (!s.single_step.on()) check_untrapped_locked(s);
    return boundary(s);
  }

  void check_cr3(VcpuDebug& s, const kvm_sregs& sregs) {
    if (s.armed && sregs.cr3 != s.armed_cr3 && (s.pages.slots() || s.exec_slots)) {
      s.dirty.store(true, std::memory_order_release);
    }
  }

  std::optional<ExitAction> handle_debug_exit(VcpuDebug& s, kvm_run& run) {
    s.counters.debug_exits.fetch_add(1, std::memory_order_relaxed);
    const auto& arch = run.debug.arch;
    if (arch.exception == x86::kVectorBp) {
      // USE_SW_BP: a planted INT3 (like the emulation failure), or the guest's own.
      const kvm_regs regs = s.registers.regs();
      const kvm_sregs sregs = s.registers.sregs();
      bool planted = false;
      {
        std::lock_guard lock(mutex);
        const auto gpa = linear_to_gpa(memory(), sregs, sregs.cs.base + regs.rip);
        planted = gpa && sites.find(*gpa) && !sites.find(*gpa)->lifted;
      }
      if (!planted) {
        deliver_software_interrupt(s.runner.vcpu(), memory());
        return ExitAction::kResume;
      }
      s.counters.trap_exits.fetch_add(1, std::memory_order_relaxed);
      return boundary(s);
    }
    if (arch.dr6 & bp::dr6::kBd) return boundary(s);  // MOV DR under DR7.GD
    // The hardware engine's slots: instruction ones are fault-like, data ones trap-like.
    std::uint64_t data_hit = 0;
    bool exec_hit = false;
    {
      std::lock_guard lock(mutex);
      const std::uint64_t hit = s.hardware.slots_hit(arch.dr6);
      exec_hit = (hit & s.exec_slots) != 0;
      data_hit = hit & ~s.exec_slots;
      s.access_slots |= data_hit;
    }
    if (data_hit) {
      const ExitAction action = finish_completion(s);
      if (action == ExitAction::kPause || !exec_hit) return action;
    }
    if (exec_hit) return boundary(s);
    if ((arch.dr6 & bp::dr6::kBs) && stepping(s)) return handle_step_exit(s);
    return reflect_guest_debug_exception(s, arch);
  }

  // The guest's own #DB, which KVM hands to userspace instead of delivering it while drvm uses
  // KVM_GUESTDBG_USE_HW_BP or SINGLESTEP (VMX and SVM intercept every #DB then): its TF
  // single-step (DR6.BS, RIP past the instruction) or ICEBP/INT1 (no status bit; VMX exits with
  // RIP still at the 0xF1 byte, as the instruction is intercepted rather than executed).
  ExitAction reflect_guest_debug_exception(VcpuDebug& s, const kvm_debug_exit_arch& arch) {
    Notifications n;
    kvm_regs regs = s.registers.regs();
    const kvm_sregs sregs = s.registers.sregs();
    {
      std::lock_guard lock(mutex);
      if (arch.dr6 & bp::dr6::kBs) {
        guest_single_step_trap(s, n, regs.rip);
      } else {
        std::array<std::uint8_t, 1> byte{};
        const auto gpa = linear_to_gpa(memory(), sregs, sregs.cs.base + regs.rip);
        if (arch.pc == sregs.cs.base + regs.rip && gpa && sites.read_original(*gpa, byte) == 1 &&
            byte[0] == x86::kIcebp) {
          regs.rip += 1;  // a trap: the #DB reports the next instruction
          s.registers.set_regs(regs);
        }
        // ICEBP sets no status bit; like every #DB it clears B0-B3 and DR7.GD.
        inject(s, x86::kVectorDb, std::nullopt, manager.guest(s.index).deliver_db(0));
      }
    }
    if (notify(n)) return stop_vcpu(s, n.stop_info);
    return ExitAction::kResume;
  }
};

// ---------------------------------------------------------------------------------------------

ProbeSource probe_on_demand(const System& system) {
  return [&system]() -> const ProbeResult& { return probe_once(system); };
}

DebugController::DebugController(Machine& machine, ProbeSource probe, const DebugOptions& options,
                                 const BootImage* image)
    : state_(std::make_unique<State>(machine, std::move(probe), options)) {
  State& st = *state_;
  const SharedEngineState shared{machine.memory(), st.sites, st.pages, st.tables, st.image_code};
  for (std::size_t i = 0; i < machine.vcpu_count(); ++i) {
    const auto index = static_cast<unsigned>(i);
    st.vcpus.push_back(
        std::make_unique<VcpuDebug>(machine.vcpu(i), index, shared, st.manager.guest(index)));
  }
  // DR6's active-low bits are writable where the guest's CPUID has RTM or bus-lock detection.
  for (const kvm_cpuid_entry2& entry : machine.system().supported_cpuid()) {
    if (entry.function != 7 || entry.index != 0) continue;
    for (std::size_t i = 0; i < machine.vcpu_count(); ++i) {
      st.manager.guest(static_cast<unsigned>(i))
          .set_cpu_features((entry.ebx >> 11) & 1, (entry.ecx >> 24) & 1);
    }
  }
  const int sync = machine.system().check_extension(KVM_CAP_SYNC_REGS);
  st.sync_sregs = (sync & KVM_SYNC_X86_SREGS) != 0;
  st.sync_regs = (sync & KVM_SYNC_X86_REGS) != 0;
  st.block_irq =
      (machine.system().check_extension(KVM_CAP_SET_GUEST_DEBUG2) & KVM_GUESTDBG_BLOCKIRQ) != 0;
  if (!options.exact && image != nullptr) {
    // The image's MOV DR sites are planted without waiting for the probe: where the host traps
    // MOV DR itself (DR7.GD) they are redundant but harmless, and guestfw images carry some in
    // code most guests never run (the fault register dump).
    st.image_code = scan_image_code(*image);
    st.mov_dr_sites = std::move(st.image_code.mov_dr_sites);
  } else if (!options.exact) {
    // Without an image the host's DR7.GD trap is the only way to see the guest's MOV DR.
    std::lock_guard lock(st.mutex);
    st.answers();
  }
  machine.add_interceptor(*this, ChainPosition::kLast);
}

DebugController::~DebugController() {
  state_->machine.remove_interceptor(*this);
}

bp::Result<bp::EventId> DebugController::create_event(const bp::EventSpec& spec) {
  if (spec.binding.target == bp::kGuestTarget) return bp::Error::kBadVcpu;
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.create(spec);
  if (!result) return result;
  // The engines need the probe's answers to arm it: find them here rather than on a vCPU thread.
  if (!state_->options.exact) state_->answers();
  state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::destroy_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  const bp::EventSpec* spec = state_->manager.spec(id);
  if (spec && spec->binding.target == bp::kGuestTarget) return bp::Error::kUnknownEvent;
  auto result = state_->manager.destroy(id);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::enable_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.enable(id);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::disable_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.disable(id);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::modify_event(bp::EventId id, const bp::BpAttr& attr) {
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.modify(id, attr);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<bp::EventReading> DebugController::read_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  return state_->manager.read(id);
}

bp::Result<bp::EventState> DebugController::event_state(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  return state_->manager.placed_state(id);
}

Engine DebugController::engine_of(unsigned vcpu, bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  if (vcpu >= state_->vcpus.size()) return Engine::kNone;
  const VcpuDebug& s = *state_->vcpus[vcpu];
  const bp::EffectiveSet& eff = state_->manager.effective(vcpu);
  for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
    const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
    if (eff.slot_event[slot] == id) {
      return s.armed_generation == eff.generation ? s.engine[slot] : Engine::kNone;
    }
  }
  return Engine::kNone;
}

std::vector<SlotInfo> DebugController::slots(unsigned vcpu) {
  std::lock_guard lock(state_->mutex);
  std::vector<SlotInfo> out;
  if (vcpu >= state_->vcpus.size()) return out;
  const VcpuDebug& s = *state_->vcpus[vcpu];
  const bp::EffectiveSet& eff = state_->manager.effective(vcpu);
  const bp::GuestDrFile& guest = state_->manager.guest(vcpu);
  for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
    const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
    SlotInfo info;
    info.slot = slot;
    info.event = eff.slot_event[slot];
    info.attr = eff.slot_attr[slot];
    // Not armed since the scheduler last moved things: pending, whatever the slot held before.
    info.engine = s.armed_generation == eff.generation ? s.engine[slot] : Engine::kNone;
    if (const bp::EventSpec* spec = state_->manager.spec(info.event)) {
      info.owner = spec->binding.target;
    }
    for (unsigned dr = 0; dr < bp::kX86HardwareSlots; ++dr) {
      if (guest.event(dr) == info.event) info.guest_dr = dr;
    }
    if (auto state = state_->manager.state(info.event)) info.state = state.value();
    out.push_back(info);
  }
  return out;
}

void DebugController::set_hit_callback(bp::TargetId owner, HitCallback callback) {
  std::lock_guard lock(state_->mutex);
  if (callback) {
    state_->hit_callbacks[owner] = std::move(callback);
  } else {
    state_->hit_callbacks.erase(owner);
  }
}

void DebugController::set_stop_callback(StopCallback callback) {
  std::lock_guard lock(state_->mutex);
  state_->stop_callback = std::move(callback);
}

void DebugController::resume(unsigned vcpu) {
  VcpuDebug& s = *state_->vcpus.at(vcpu);
  if (s.thread.load() == std::this_thread::get_id()) {
    // From a stop callback on the vCPU's own thread: do not park at all.
    std::lock_guard lock(state_->mutex);
    s.cancel_stop = true;
    return;
  }
  // A stop returns kPause after its callback: wait until the vCPU is really parked, so this
  // resume cannot be lost. The debugger may have changed RIP: --exact decodes again.
  s.runner.pause();
  {
    std::lock_guard lock(state_->mutex);
    if (!s.step.for_debugger) s.single_step.prime = true;
  }
  s.runner.resume();
}

void DebugController::single_step(unsigned vcpu) {
  State& st = *state_;
  VcpuDebug& s = *st.vcpus.at(vcpu);
  const bool own_thread = s.thread.load() == std::this_thread::get_id();
  if (!own_thread) s.runner.pause();
  {
    std::lock_guard lock(st.mutex);
    const kvm_regs regs = s.runner.vcpu().regs();
    const kvm_sregs sregs = s.runner.vcpu().sregs();
    s.step.for_debugger = true;
    s.single_step.prime = false;
    // The instruction at RIP runs even when a breakpoint is there.
    s.skip_exec_at = sregs.cs.base + regs.rip;
    st.begin_step(s, regs, sregs);
    if (own_thread) s.cancel_stop = true;
  }
  if (!own_thread) s.runner.resume();
}

bp::GuestDebugRegs DebugController::guest_debug_regs(unsigned vcpu) {
  std::lock_guard lock(state_->mutex);
  return state_->manager.guest(vcpu).values();
}

std::optional<bp::Error> DebugController::set_guest_debug_regs(unsigned vcpu,
                                                               const bp::GuestDebugRegs& regs) {
  std::lock_guard lock(state_->mutex);
  auto error = state_->manager.guest(vcpu).load(regs);
  state_->mark_all_dirty();
  return error;
}

std::size_t DebugController::read_original(unsigned vcpu, std::uint64_t linear,
                                           std::span<std::uint8_t> out) {
  const kvm_sregs sregs = state_->machine.vcpu(vcpu).vcpu().sregs();
  const PagingState paging = PagingState::from(sregs);
  std::lock_guard lock(state_->mutex);
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t address = linear + done;
    const Translation t = translate(state_->machine.memory(), paging, address);
    if (!t.ok()) break;
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, 4096 - (address & 4095));
    if (state_->sites.read_original(t.gpa, out.subspan(done, chunk)) != chunk) break;
    done += chunk;
  }
  return done;
}

std::size_t DebugController::read_original_physical(std::uint64_t gpa,
                                                    std::span<std::uint8_t> out) {
  std::lock_guard lock(state_->mutex);
  return state_->sites.read_original(gpa, out);
}

std::size_t DebugController::write_memory(unsigned vcpu, std::uint64_t linear,
                                          std::span<const std::uint8_t> in) {
  const kvm_sregs sregs = state_->machine.vcpu(vcpu).vcpu().sregs();
  const PagingState paging = PagingState::from(sregs);
  std::lock_guard lock(state_->mutex);
  std::size_t done = 0;
  for (; done < in.size(); ++done) {
    const Translation t = translate(state_->machine.memory(), paging, linear + done);
    if (!t.ok()) break;
    if (state_->sites.write_original(t.gpa, in[done])) continue;
    const std::byte byte{in[done]};
    if (!state_->machine.memory().write(t.gpa, std::span(&byte, 1))) break;
  }
  return done;
}

DebugCounters DebugController::counters(unsigned vcpu) {
  const DebugCounterCells& c = state_->vcpus.at(vcpu)->counters;
  DebugCounters out;
  out.debug_exits = c.debug_exits.load();
  out.single_steps = c.single_steps.load();
  out.protected_accesses = c.protected_accesses.load();
  out.trap_exits = c.trap_exits.load();
  out.dr_emulations = c.dr_emulations.load();
  out.host_hits = c.host_hits.load();
  out.guest_debug_exceptions = c.guest_debug_exceptions.load();
  out.untrapped_dr_changes = c.untrapped_dr_changes.load();
  out.rearms = c.rearms.load();
  return out;
}

const ProbeResult& DebugController::probe() const {
  std::lock_guard lock(state_->mutex);
  return state_->answers();
}

const DebugOptions& DebugController::options() const {
  return state_->options;
}

void DebugController::before_run(VcpuRunner& runner) {
  State& st = *state_;
  VcpuDebug& s = st.at(runner);
  if (s.thread.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    s.thread.store(std::this_thread::get_id());
  }
  kvm_run& run = runner.vcpu().run_area();
  run.kvm_valid_regs =
      (st.sync_sregs ? KVM_SYNC_X86_SREGS : 0) | (st.sync_regs ? KVM_SYNC_X86_REGS : 0);
  // Whoever held the vCPU since the last exit (default exit handling, a debugger) may have
  // changed its registers: read them again after the next exit.
  s.registers.invalidate();
  if (!st.sites_planted.load(std::memory_order_acquire)) st.plant_mov_dr_sites();
  if (s.mmio_pending && !s.completing && s.dirty.load(std::memory_order_acquire)) {
    // A re-arm is due while KVM still owes the rest of the instruction that made the access:
    // let it finish first, so that no access of that instruction escapes the engines.
    s.completing = true;
    s.completion_entered = false;
  }
  if (s.completing && !s.completion_entered) {
    // KVM completes the access and returns EINTR (on_interrupted()). Also during a step: after
    // a write to a protected page KVM forgets the step it owes.
    s.completion_entered = true;
    run.immediate_exit = 1;
    return;
  }
  if (s.dirty.load(std::memory_order_acquire)) {
    std::lock_guard lock(st.mutex);
    st.rearm(s, false);
  }
  if (s.single_step.on() && s.single_step.prime) {
    run.immediate_exit = 1;  // decode the instruction at RIP first: on_interrupted()
    return;
  }
  st.apply_guest_debug(s);
  if (s.single_step.restore_tf_pending() && !State::kvm_steps(s)) {
    // A step or the single-step engine is over: the guest's TF is in RFLAGS again.
    s.single_step.take_restore_tf();
    s.step.tf_after = false;
    kvm_regs regs = s.registers.regs();
    regs.rflags |= x86::kRflagsTf;
    s.registers.set_regs(regs);
  }
}

void DebugController::on_reset(VcpuRunner& runner) {
  // INIT reset the vCPU inside KVM (an AP being started): KVM_SET_GUEST_DEBUG's breakpoints are
  // gone from the VMCB on SVM and the cached registers are stale. Apply and arm everything again.
  State& st = *state_;
  VcpuDebug& s = st.at(runner);
  s.registers.invalidate();
  s.debug_applied = false;
  s.dirty.store(true, std::memory_order_release);
}

ExitAction DebugController::on_interrupted(VcpuRunner& runner) {
  State& st = *state_;
  VcpuDebug& s = st.at(runner);
  s.registers.synced(runner.vcpu().run_area(), st.sync_regs, st.sync_sregs);
  s.mmio_pending = false;
  if (s.completing && s.completion_entered) {
    return State::stepping(s) ? st.handle_step_exit(s) : st.finish_completion(s);
  }
  if (s.single_step.on() && s.single_step.prime) {
    s.single_step.prime = false;
    return st.boundary(s);
  }
  return ExitAction::kResume;
}

std::optional<ExitAction> DebugController::on_exit(VcpuRunner& runner, const VmExit& exit) {
  kvm_run& run = exit.run;
  State& st = *state_;
  VcpuDebug& s = st.at(runner);
  s.registers.synced(run, st.sync_regs, st.sync_sregs);
  s.mmio_pending = exit.kind == ExitKind::kMmio;
  // A CR3 switch moves linear watches and breakpoints: re-translate before the next entry.
  if (st.sync_sregs && s.armed && run.s.regs.sregs.cr3 != s.armed_cr3 &&
      (s.pages.slots() | s.exec_slots)) {
    s.dirty.store(true, std::memory_order_release);
  }
  // The stack next to a protected page: an exception frame KVM pushes there would be lost, so the
  // vCPU re-arms, and steps, from its next entry (layout_needs_stepping). Looked at every exit
  // when the registers come with it (KVM_CAP_SYNC_REGS), else at protected accesses (MMIO).
  if (s.pages.slots() && !s.single_step.on() && !s.layout_changed &&
      ((st.sync_regs && st.sync_sregs) || exit.kind == ExitKind::kMmio)) {
    std::lock_guard lock(st.mutex);
    if (frame_on_guarded_page(st.memory(), st.pages, s.registers.sregs(), s.registers.regs())) {
      State::recheck_layout(s);
    }
  }
  switch (exit.kind) {
    case ExitKind::kMmio:
      return st.handle_mmio(s, run);
    case ExitKind::kDebug:
      return st.handle_debug_exit(s, run);
    case ExitKind::kInternalError:
      if (run.internal.suberror != KVM_INTERNAL_ERROR_EMULATION) return std::nullopt;
      return st.handle_emulation_failure(s);
    case ExitKind::kIo:
    case ExitKind::kHlt:
      if (!s.single_step.on()) st.check_untrapped_locked(s);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace drvm::vmm::debug
