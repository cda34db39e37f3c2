// DebugController: debug-register virtualization for one Machine, the locked exit router of the
// debug layer. It owns bpcore's BreakpointManager and, per vCPU, one of each engine
// (engines/: hardware slots, planted INT3, read-only or unmapped pages, the single-step engine,
// drvm's own steps) and the guest's DR access (guest_dr_access.hpp). It arms every scheduled
// breakpoint with the engine the probe and the layout allow, hands each exit to the engine that
// claims it, and routes hits: host events are counted and may stop the vCPU, guest events become a
// #DB with the DR6 the guest expects. docs/dr-virtualization.md explains the engines.
//
// Threading: before_run()/on_exit() run on each vCPU's own thread. Every other public method may
// be called from any thread; they take the controller's lock and re-arm the vCPUs themselves
// (kicking running ones so they pick up the change before their next KVM_RUN). Hit and stop
// callbacks run on a vCPU thread with the lock released; they must not block for long, and may
// call back into the controller.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "bpcore/attributes.hpp"
#include "bpcore/clock.hpp"
#include "bpcore/event.hpp"
#include "bpcore/guest_dr_file.hpp"
#include "bpcore/result.hpp"
#include "bpcore/types.hpp"
#include "vmm/boot/image.hpp"
#include "vmm/debug/engines/engine.hpp"
#include "vmm/machine.hpp"
#include "vmm/probe/probe.hpp"

namespace drvm::vmm::debug {

// Owners of host events (bp::TargetId). The guest's own breakpoints are bp::kGuestTarget.
inline constexpr bp::TargetId kGdbOwner = 1;
inline constexpr bp::TargetId kSessionOwner = 2;  // counting sessions (--event/--stat/--trace)
inline constexpr bp::TargetId kReplayOwner = 3;   // reverse execution's replays (vmm/replay)

struct DebugOptions {
  // --exact: single-step every instruction and decode it first (nothing planted, no page
  // protection); the reference engine.
  bool exact = false;
  // The host's slots per vCPU (gdb's and the sessions' events), 4..60. The guest's own DR0-DR3
  // come on top (bpcore's kGuestSlots; they take the hardware slots first), so a vCPU has
  // slots + 4 in all. Host events beyond it multiplex (flexible) or fail (pinned).
  std::uint32_t slots = bp::kMaxHostSlots;
  // Where the one-time warnings go (an untrapped MOV DR, a guest breakpoint that could not be
  // armed). nullptr silences them.
  std::FILE* log = stderr;
};

// A host event fired on a vCPU.
struct HostHit {
  unsigned vcpu = 0;
  bp::EventId event;
  bp::TargetId owner = 0;
  // Instruction breakpoints: the breakpoint address (the instruction has not run). Data
  // breakpoints: RIP after the access (past the instruction, or at a REP string instruction with
  // iterations left), as the trap-like #DB reports it.
  std::uint64_t rip = 0;
  // Data breakpoints: the (first) access that matched, when the engine saw it (a hardware data
  // breakpoint does not: then only `data` tells the hit from an instruction breakpoint's).
  std::optional<AccessInfo> access;
  bool data = false;        // a data breakpoint's hit (trap-like, RIP after the access)
  std::uint64_t count = 0;  // the event's count including this hit
  bool overflow = false;    // this hit completed the event's sample period
};
// Return true to stop the vCPU (it parks; on_stop is called; resume() lets it go).
using HitCallback = std::function<bool(const HostHit&)>;

enum class StopKind : std::uint8_t {
  kBreakpoint,  // a host instruction breakpoint; RIP at the instruction, not executed yet
  kWatchpoint,  // a host data breakpoint; RIP after the access
  kStep,        // a single_step() finished
};
struct StopInfo {
  StopKind kind = StopKind::kStep;
  std::uint64_t rip = 0;
  bp::EventId event;                 // kBreakpoint/kWatchpoint: the first event that asked to stop
  bp::TargetId owner = 0;            // its owner
  std::optional<AccessInfo> access;  // kWatchpoint: the access
};
using StopCallback = std::function<void(unsigned vcpu, const StopInfo&)>;

// Where the controller gets the capability probe's answers. It is called at most once, the first
// time an answer is needed (the first host event, the first armed guest breakpoint, a #DB
// injected through KVM, probe(), or construction without an image), so a guest that never arms a
// debug register starts without the probe's 13 probe VMs.
using ProbeSource = std::function<const ProbeResult&()>;
// The process-wide probe of `system` (probe_once), run on first use.
ProbeSource probe_on_demand(const System& system);

// One used slot of a vCPU's effective set (DebugController::slots()).
struct SlotInfo {
  unsigned slot = 0;  // index in the vCPU's slots (0..DebugOptions::slots-1)
  bp::EventId event;
  bp::TargetId owner = 0;            // kGdbOwner, kSessionOwner or bp::kGuestTarget
  std::optional<unsigned> guest_dr;  // owner bp::kGuestTarget: the guest's DR number (0-3)
  bp::BpAttr attr;                   // as scheduled on the slot
  // kNone: scheduled but not armed (the vCPU has not entered the guest since, or the address
  // is not mapped now).
  Engine engine = Engine::kNone;
  bp::EventState state = bp::EventState::kActive;
};

// Per-vCPU counters of the debug layer (all since construction).
struct DebugCounters {
  std::uint64_t debug_exits = 0;             // KVM_EXIT_DEBUG handled (hardware hits and steps)
  std::uint64_t single_steps = 0;            // steps drvm requested (step-over, --exact, fallbacks)
  std::uint64_t protected_accesses = 0;      // MMIO exits on protected pages completed against RAM
  std::uint64_t trap_exits = 0;              // planted INT3 reached (emulation failure or #BP exit)
  std::uint64_t dr_emulations = 0;           // guest MOV DR emulated
  std::uint64_t host_hits = 0;               // host events fired
  std::uint64_t guest_debug_exceptions = 0;  // #DB injected into the guest
  std::uint64_t untrapped_dr_changes = 0;    // safety net: KVM's DRs changed behind drvm's back
  std::uint64_t rearms = 0;                  // times the engines were re-programmed
};

class DebugController final : public ExitInterceptor {
 public:
  // Installs itself as `machine`'s interceptor. `image` (optional) is decoded for MOV DR sites,
  // planted at the first vCPU entry; without an image the probe runs here (the host's DR7.GD trap
  // is then the only way to see the guest's MOV DR). Call before Machine::run().
  DebugController(Machine& machine, ProbeSource probe, const DebugOptions& options,
                  const BootImage* image = nullptr);
  ~DebugController() override;
  DebugController(const DebugController&) = delete;
  DebugController& operator=(const DebugController&) = delete;

  // --- Host events (owner = spec.binding.target; never bp::kGuestTarget) ------------------------
  // Errors are bpcore's (attributes, kNoSpace, kBadVcpu, kUnknownEvent ...).
  bp::Result<bp::EventId> create_event(const bp::EventSpec& spec);
  bp::Result<void> destroy_event(bp::EventId id);
  bp::Result<void> enable_event(bp::EventId id);
  bp::Result<void> disable_event(bp::EventId id);
  bp::Result<void> modify_event(bp::EventId id, const bp::BpAttr& attr);
  bp::Result<bp::EventReading> read_event(bp::EventId id);
  // Schedules the event's vCPUs first, so kError says at once that a pinned event cannot be placed.
  bp::Result<bp::EventState> event_state(bp::EventId id);
  // Multiplexing (perf's rotation, bpcore/rotation.hpp): when flexible events were left off
  // `vcpu`'s slots, the next ones in turn take them at its next entry; whether anything moved.
  // Call on `vcpu`'s own thread before its entry (an ExitInterceptor's before_run()).
  bool rotate_flexible(unsigned vcpu);
  // The clock of the events' time enabled and time running (nullptr: a steady clock); it must
  // outlive its use. The counting session counts in vCPU time, as perf counts in task time.
  void set_event_clock(bp::Clock* clock);
  // The engine serving `id` on `vcpu` right now (kNone when not on that vCPU's slots).
  Engine engine_of(unsigned vcpu, bp::EventId id);
  // Every used slot of `vcpu` (host events and the guest's DR0-DR3), by slot index; empty for an
  // unknown vCPU.
  std::vector<SlotInfo> slots(unsigned vcpu);

  // Called for every hit of `owner`'s events (replaces the previous callback; empty removes).
  // Without a callback a hit stops only when its overflow asks to (bpcore's sample_period).
  void set_hit_callback(bp::TargetId owner, HitCallback callback);
  // Called once per stop (host breakpoint/watchpoint that asked to stop, finished single_step).
  void set_stop_callback(StopCallback callback);

  // --- Execution control (the gdb stub) ---------------------------------------------------------
  // Lets a vCPU parked by a stop (or by VcpuRunner::pause) run again. A vCPU stopped at a host
  // instruction breakpoint executes that instruction without reporting it again.
  void resume(unsigned vcpu);
  // Executes exactly one guest instruction on a stopped vCPU, then stops it with StopKind::kStep
  // (also when a breakpoint sits at RIP; a breakpoint or watchpoint hit by that instruction is
  // reported as that stop instead). Composes with the engines' own steps.
  void single_step(unsigned vcpu);

  // --- Guest state as a debugger sees it ---------------------------------------------------------
  // DR0-DR3, DR6, DR7 as the guest reads them (its virtual DR file, never the host's slots).
  bp::GuestDebugRegs guest_debug_regs(unsigned vcpu);
  // A debugger writes the guest's DRs (gdb's dr0-dr7 registers): as if the guest had executed the
  // MOVs, without fault checks. Returns the arming error, if any.
  std::optional<bp::Error> set_guest_debug_regs(unsigned vcpu, const bp::GuestDebugRegs& regs);
  // Guest memory with drvm's planted INT3s replaced by the original bytes. Linear addresses go
  // through `vcpu`'s page tables; returns the bytes transferred (fewer at an unmapped page).
  std::size_t read_original(unsigned vcpu, std::uint64_t linear, std::span<std::uint8_t> out);
  std::size_t read_original_physical(std::uint64_t gpa, std::span<std::uint8_t> out);
  // Writes guest memory for a debugger: bytes under planted INT3s update the saved originals (the
  // trap stays planted and the site is re-decoded), everything else goes to RAM.
  std::size_t write_memory(unsigned vcpu, std::uint64_t linear, std::span<const std::uint8_t> in);

  // The address whose instruction breakpoints the vCPU's current boundary has already reported
  // (resume() lets the instruction there run without firing them again), if any. Reverse
  // execution saves it with a position and puts it back (vmm/replay).
  std::optional<std::uint64_t> reported_breakpoint(unsigned vcpu);
  void set_reported_breakpoint(unsigned vcpu, std::optional<std::uint64_t> linear);
  // Writes guest-physical memory as the guest would have it (a snapshot restored): bytes under
  // planted INT3s update the saved originals and the traps stay. Returns the bytes written.
  std::size_t write_physical(std::uint64_t gpa, std::span<const std::uint8_t> in);
  // The guest's registers and memory were replaced behind its back (a snapshot restored): every
  // vCPU re-translates, re-arms its breakpoints and gives KVM its debug state again (KVM's
  // single step is tied to the RIP it had when KVM_SET_GUEST_DEBUG was called).
  void state_replaced();

  DebugCounters counters(unsigned vcpu);
  // The probe's answers (runs the probe if nothing needed it yet).
  const ProbeResult& probe() const;
  const DebugOptions& options() const;

  // --- ExitInterceptor (vCPU threads)
  // -------------------------------------------------------------
  void before_run(VcpuRunner& vcpu) override;
  std::optional<ExitAction> on_exit(VcpuRunner& vcpu, const VmExit& exit) override;
  ExitAction on_interrupted(VcpuRunner& vcpu) override;
  void on_reset(VcpuRunner& vcpu) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace drvm::vmm::debug
