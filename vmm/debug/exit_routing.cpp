// The exit router: each exit the debug layer takes goes to the engine that claims it, and the
// instruction it interrupted is finished as the processor would (fault-like instruction
// breakpoints, trap-like data breakpoints, the guest's TF).
#include <algorithm>
#include <bit>
#include <mutex>
#include <thread>
#include <utility>

#include "vmm/debug/access_decoder.hpp"
#include "vmm/debug/controller_state.hpp"
#include "vmm/debug/engines/system_layout.hpp"
#include "vmm/debug/flags_instructions.hpp"
#include "vmm/x86/software_interrupts.hpp"

namespace drvm::vmm::debug {

// ---- data accesses of the instruction in flight ----
void DebugController::State::match_access(VcpuDebug& s, const AccessInfo& access,
                                          std::uint64_t candidates) {
  const bp::EffectiveSet& eff = manager.effective(s.index);
  const std::uint64_t hit = eff.slots_matching(candidates, access.linear, access.size, access.type);
  if (hit == 0) return;
  s.access_slots |= hit;
  if (s.first_access) return;
  s.first_access = access;
  if (access.size > 8) {
    // A REP string range: report the element that touched the (lowest) watch.
    const bp::BpAttr& attr = eff.slot_attr[static_cast<unsigned>(std::countr_zero(hit))];
    s.first_access->linear = std::max(access.linear, attr.addr);
    s.first_access->size = 1;
  }
}

void DebugController::State::add_match(VcpuDebug& s, const AccessMatch& match) {
  s.access_slots |= match.slots;
  if (!s.first_access && match.first) s.first_access = match.first;
}

// The instruction that made the collected accesses completed: report them (trap-like), with the
// guest's own single-step when drvm's step swallowed it.
void DebugController::State::finish_instruction(VcpuDebug& s, const kvm_regs& regs, bool guest_step,
                                                Notifications& n) {
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
void DebugController::State::check_exec(VcpuDebug& s, std::uint64_t linear, const kvm_regs& regs,
                                        Notifications& n) {
  if (s.skip_exec_at == linear || (regs.rflags & x86::kRflagsRf)) return;
  const std::uint64_t hit =
      manager.effective(s.index).slots_matching(s.exec_slots, linear, 1, bp::Access::kExecute);
  if (!hit) return;
  bp::DispatchResult out;
  manager.dispatch(s.index, bp::DbHit{hit, 0}, out);
  route(s, out, regs.rip, StopKind::kBreakpoint, std::nullopt, n);
  if (!n.guest_delivered) s.skip_exec_at = linear;  // the host let it run: report it once
}

// Starts one drvm step of the instruction at RIP (Stepper::begin).
void DebugController::State::begin_step(VcpuDebug& s, const kvm_regs& regs,
                                        const kvm_sregs& sregs) {
  s.single_step.cancel_restore_tf();  // the TF of this step's end decides
  s.counters.single_steps.fetch_add(1, std::memory_order_relaxed);
  s.step.begin(regs, sregs, guest_tf(s, regs), s.single_step.on(), manager.effective(s.index),
               s.data_slots);
}

// A drvm step finished (the instruction retired or faulted): its decoded accesses are matched.
void DebugController::State::end_step(VcpuDebug& s, const kvm_regs& after) {
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
ExitAction DebugController::State::boundary(VcpuDebug& s) {
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
    s.hardware.suppress_for_step(
        manager.effective(s.index).slots_matching(s.exec_slots, linear, 1, bp::Access::kExecute));
    s.step.over = true;
    begin_step(s, regs, sregs);
    return ExitAction::kResume;
  }
  return ExitAction::kResume;
}

ExitAction DebugController::State::handle_step_exit(VcpuDebug& s) {
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
    if (after.rip == start || s.completing) s.step.retire_finished_rep(after, s.registers.sregs());
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
std::optional<ExitAction> DebugController::State::handle_mmio(VcpuDebug& s, kvm_run& run) {
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

ExitAction DebugController::State::finish_completion(VcpuDebug& s) {
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
std::optional<ExitAction> DebugController::State::handle_emulation_failure(VcpuDebug& s) {
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

void DebugController::State::check_cr3(VcpuDebug& s, const kvm_sregs& sregs) {
  if (s.armed && sregs.cr3 != s.armed_cr3 && (s.pages.slots() || s.exec_slots)) {
    s.dirty.store(true, std::memory_order_release);
  }
}

std::optional<ExitAction> DebugController::State::handle_debug_exit(VcpuDebug& s, kvm_run& run) {
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
ExitAction DebugController::State::reflect_guest_debug_exception(VcpuDebug& s,
                                                                 const kvm_debug_exit_arch& arch) {
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

// ---- ExitInterceptor (vCPU threads) ----

void DebugController::before_run(VcpuRunner& runner) {
  State& st = *state_;
  VcpuDebug& s = st.at(runner);
  if (s.thread.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    s.thread.store(std::this_thread::get_id());
  }
  kvm_run& run = runner.vcpu().run_area();
  // Or-ed in: an earlier link (the exit log) may want the registers too.
  run.kvm_valid_regs |=
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
  {
    // INIT also resets the debug registers (SDM Vol. 3A, processor state after INIT).
    std::lock_guard lock(st.mutex);
    (void)st.manager.guest(s.index).load(bp::GuestDebugRegs{{}, bp::dr6::kInit, bp::dr7::kInit});
  }
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
