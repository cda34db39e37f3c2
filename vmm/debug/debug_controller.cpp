#include "vmm/debug/debug_controller.hpp"

#include <sys/ioctl.h>

#include <fmt/format.h>
#include <algorithm>
#include <bit>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "vmm/debug/controller_state.hpp"
#include "vmm/debug/engines/system_layout.hpp"
#include "vmm/x86/event_delivery.hpp"
#include "vmm/x86/paging.hpp"

namespace drvm::vmm::debug {
namespace {

// The control bits that decide how linear addresses translate (besides CR3).
std::uint64_t paging_mode(const kvm_sregs& sregs) {
  return (sregs.cr0 & (std::uint64_t{1} << 31)) | (sregs.cr4 & 0x1030) |
         (sregs.efer & x86::kEferLma);
}

}  // namespace

// The probe's answers and the settings derived from them (lock held). The first call runs the
// probe; trapping MOV DR through DR7.GD then re-arms every vCPU.
const ProbeResult& DebugController::State::answers() {
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

void DebugController::State::plant_mov_dr_sites() {
  std::lock_guard lock(mutex);
  if (sites_planted.load()) return;
  for (const MovDrSite& site : mov_dr_sites) sites.add_mov_dr(site.gpa);
  sites_planted.store(true);
}

void DebugController::State::plant_system_sites() {
  if (system_sites_planted) return;
  system_sites_planted = true;
  for (std::uint64_t gpa : image_code.system_sites) sites.add_system(gpa);
}

void DebugController::State::mark_all_dirty() {
  for (auto& s : vcpus) {
    s->dirty.store(true, std::memory_order_release);
    if (s->thread.load() != std::this_thread::get_id()) s->runner.kick();
  }
}

void DebugController::State::set_stepping(VcpuDebug& s, bool on) {
  if (on) {
    s.single_step.enter(s.registers, guest_tf(s, s.registers.regs()));
  } else {
    s.single_step.leave();
  }
}

// The vCPU single-steps from its next instruction on; every slot is re-armed for it then.
void DebugController::State::step_from_now(VcpuDebug& s) {
  disarm(s);
  set_stepping(s, true);
  s.armed = false;
  s.dirty.store(true, std::memory_order_release);
}

// ---- arming ----
void DebugController::State::disarm(VcpuDebug& s) {
  s.hardware.disarm();
  s.int3.disarm();
  s.pages.disarm();
  s.engine.fill(Engine::kNone);
  s.exec_slots = s.data_slots = 0;
}

// Gives each slot of the vCPU's effective set an engine: the single-step engine when the vCPU
// steps (--exact, or a layout the page engines cannot serve), else a hardware slot, then INT3
// for instruction breakpoints and a page engine for data breakpoints.
void DebugController::State::rearm(VcpuDebug& s, bool force) {
  s.dirty.store(false, std::memory_order_release);
  s.dr.mirror();  // a debugger or the safety net may have changed the guest's DRs
  const bp::EffectiveSet& eff = manager.schedule(s.index);
  const kvm_sregs sregs = s.runner.vcpu().sregs();
  const std::uint64_t table_generation = tables.generation.load();
  const bool same_translation = eff.generation == s.armed_generation && sregs.cr3 == s.armed_cr3 &&
                                paging_mode(sregs) == s.armed_paging_mode &&
                                table_generation == s.armed_table_generation;
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

void DebugController::State::apply_guest_debug(VcpuDebug& s) {
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
void DebugController::State::inject(VcpuDebug& s, std::uint8_t vector,
                                    std::optional<std::uint32_t> error_code,
                                    std::optional<std::uint64_t> dr6) {
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
bool DebugController::State::deliver_in_software(VcpuDebug& s, std::uint8_t vector,
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
void DebugController::State::route(VcpuDebug& s, const bp::DispatchResult& out, std::uint64_t rip,
                                   StopKind kind, const std::optional<AccessInfo>& access,
                                   Notifications& n) {
  for (unsigned i = 0; i < out.fired_count; ++i) {
    const bp::FiredEvent& fired = out.fired[i];
    HostHit& hit = n.hits[n.hit_count++];
    hit = HostHit{.vcpu = s.index,
                  .event = fired.event,
                  .owner = fired.owner,
                  .rip = rip,
                  .access = access,
                  .data = kind == StopKind::kWatchpoint,
                  .overflow = fired.overflow};
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
bool DebugController::State::notify(Notifications& n) {
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
      n.stop_info = StopInfo{hit.data ? StopKind::kWatchpoint : StopKind::kBreakpoint, hit.rip,
                             hit.event, hit.owner, hit.access};
    }
  }
  return stop;
}

// Parks the vCPU and tells the stop callback (no lock held).
ExitAction DebugController::State::stop_vcpu(VcpuDebug& s, const StopInfo& info) {
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
bool DebugController::State::emulate_mov_dr(VcpuDebug& s, const DecodedMove& move) {
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
void DebugController::State::guest_single_step_trap(VcpuDebug& s, Notifications& n,
                                                    std::uint64_t rip) {
  bp::DispatchResult out;
  manager.dispatch(s.index, bp::DbHit{0, bp::dr6::kBs}, out);
  route(s, out, rip, StopKind::kStep, std::nullopt, n);
}

// The safety net (GuestDrAccess::check_untrapped), with its one-time warning.
void DebugController::State::check_untrapped(VcpuDebug& s) {
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

void DebugController::State::check_untrapped_locked(VcpuDebug& s) {
  std::lock_guard lock(mutex);
  check_untrapped(s);
}

// ---- the public API ----

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
    // The image's MOV DR sites are planted without waiting for the probe, and stay where the host
    // traps MOV DR itself (DR7.GD): the processor clears GD when it delivers a #DB, so a MOV DR in
    // the guest's #DB handler would escape GD until KVM loads DR7 again. guestfw images carry
    // some in code most guests never run (the fault register dump).
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

bool DebugController::rotate_flexible(unsigned vcpu) {
  std::lock_guard lock(state_->mutex);
  if (vcpu >= state_->vcpus.size() || !state_->manager.rotate(vcpu)) return false;
  state_->vcpus[vcpu]->dirty.store(true, std::memory_order_release);
  return true;
}

void DebugController::set_event_clock(bp::Clock* clock) {
  std::lock_guard lock(state_->mutex);
  state_->manager.set_clock(clock);
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

std::optional<std::uint64_t> DebugController::reported_breakpoint(unsigned vcpu) {
  std::lock_guard lock(state_->mutex);
  const std::uint64_t at = state_->vcpus.at(vcpu)->skip_exec_at;
  return at == kNoAddress ? std::nullopt : std::optional(at);
}

void DebugController::set_reported_breakpoint(unsigned vcpu, std::optional<std::uint64_t> linear) {
  std::lock_guard lock(state_->mutex);
  state_->vcpus.at(vcpu)->skip_exec_at = linear.value_or(kNoAddress);
}

std::size_t DebugController::write_physical(std::uint64_t gpa, std::span<const std::uint8_t> in) {
  std::lock_guard lock(state_->mutex);
  return state_->sites.write_through(gpa, in);
}

void DebugController::state_replaced() {
  {
    std::lock_guard lock(state_->mutex);
    state_->tables.generation.fetch_add(1);
    for (auto& s : state_->vcpus) {
      s->armed = false;
      s->debug_applied = false;
      s->registers.invalidate();
    }
  }
  state_->mark_all_dirty();
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

}  // namespace drvm::vmm::debug
