#include "vmm/gdb/gdb_target.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <utility>

#include "vmm/gdb/gdb_monitor.hpp"
#include "vmm/gdb/gdb_registers.hpp"

namespace drvm::vmm {
namespace {

using gdbstub::BreakpointKind;
using gdbstub::StopEvent;
using gdbstub::StopReason;
using gdbstub::TrapCause;

constexpr int kErrorNoEntry = 2;   // ENOENT: no such breakpoint
constexpr int kErrorIo = 5;        // EIO: a KVM ioctl failed
constexpr int kErrorInvalid = 22;  // EINVAL: bad thread, bad attributes
constexpr int kErrorNoSpace = 28;  // ENOSPC: the breakpoint manager is full

bp::BpType event_type(BreakpointKind kind) {
  switch (kind) {
    case BreakpointKind::kWrite:
      return bp::BpType::kWrite;
    case BreakpointKind::kRead:
      return bp::BpType::kRead;
    case BreakpointKind::kAccess:
      return bp::BpType::kReadWrite;
    case BreakpointKind::kSoftware:
    case BreakpointKind::kHardware:
      break;
  }
  return bp::BpType::kExecute;
}

TrapCause trap_cause(BreakpointKind kind) {
  switch (kind) {
    case BreakpointKind::kSoftware:
      return TrapCause::kSoftwareBreakpoint;
    case BreakpointKind::kHardware:
      return TrapCause::kHardwareBreakpoint;
    case BreakpointKind::kWrite:
      return TrapCause::kWriteWatchpoint;
    case BreakpointKind::kRead:
      return TrapCause::kReadWatchpoint;
    case BreakpointKind::kAccess:
      return TrapCause::kAccessWatchpoint;
  }
  return TrapCause::kUnspecified;
}

gdbstub::Status manager_failure(bp::Error error) {
  return gdbstub::Status::failure(error == bp::Error::kNoSpace ? kErrorNoSpace : kErrorInvalid,
                                  std::string(bp::error_message(error)));
}

}  // namespace

GdbTarget::GdbTarget(Machine& machine, debug::DebugController& controller, bool hold_at_start,
                     std::uint64_t history_budget, replay::ExitLog* log)
    : machine_(machine), controller_(controller), held_(hold_at_start) {
  if (history_budget > 0 && machine_.vcpu_count() == 1) {
    replay::HistoryOptions options;
    options.budget_bytes = history_budget;
    history_ = std::make_unique<replay::History>(machine_, controller_, options, log);
  }
  // Before Machine::run(): pause() only records the request, the threads park when they start.
  if (hold_at_start) machine_.pause_all();
  controller_.set_hit_callback(debug::kGdbOwner, [this](const debug::HostHit&) {
    std::lock_guard lock(mutex_);
    return attached_;
  });
  controller_.set_stop_callback(
      [this](unsigned vcpu, const debug::StopInfo& info) { on_controller_stop(vcpu, info); });
  machine_.set_fault_hold(
      [this](VcpuRunner& vcpu, const RunOutcome& outcome) { return hold_fault(vcpu, outcome); });
  coordinator_ = std::thread([this] { coordinator_main(); });
}

GdbTarget::~GdbTarget() {
  history_.reset();  // its worker may still be finishing a move
  machine_.set_fault_hold({});
  controller_.set_stop_callback({});
  controller_.set_hit_callback(debug::kGdbOwner, {});
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  changed_.notify_all();
  coordinator_.join();
}

int GdbTarget::thread_count() const {
  return static_cast<int>(machine_.vcpu_count());
}

bool GdbTarget::valid_thread(gdbstub::ThreadId thread) const {
  return thread >= 1 && thread <= thread_count();
}

// ---------------------------------------------------------------------------------------------
// Run control

void GdbTarget::attach(gdbstub::StopHandler on_stop) {
  std::lock_guard control(control_);
  std::optional<StopEvent> now;
  {
    std::lock_guard lock(mutex_);
    attached_ = true;
    attach_stopped_it_ = false;
    stops_.clear();
    interrupt_requested_ = false;
    if (outcome_) {
      now = end_event(*outcome_);
    } else if (fault_) {
      now = fault_event_;  // a gdb that left while a fault was held: the guest is still there
      fault_reported_ = true;
    } else if (held_) {
      now = StopEvent{StopReason::kTrap, 1, TrapCause::kUnspecified};
    } else if (history_ && history_->in_past()) {
      now = StopEvent{StopReason::kTrap, 1, TrapCause::kUnspecified};  // where the last gdb left
    } else {
      // Running (or ending: finish_run() answers): the coordinator stops it and reports.
      pending_ = std::move(on_stop);
      interrupt_requested_ = !machine_.finishing();
      attach_stopped_it_ = true;
    }
  }
  changed_.notify_all();
  if (now && history_ && held_) {
    PendingStop start;
    start.event = *now;
    record_live_stop(start);  // the recording starts at the first instruction
  }
  if (now) on_stop(*now);
}

void GdbTarget::resume(const gdbstub::ResumeRequest& request, gdbstub::StopHandler on_stop) {
  std::lock_guard control(control_);
  std::optional<StopEvent> now;
  bool report_pending = false;
  bool end_fault = false;
  {
    std::lock_guard lock(mutex_);
    if (outcome_) {
      now = end_event(*outcome_);
    } else if (fault_ && !fault_reported_) {
      // The fault happened while the vCPUs were being stopped (its exit was already under way):
      // gdb sees it now instead of a resume.
      stops_.clear();
      fault_reported_ = true;
      now = fault_event_;
    } else if (fault_) {
      // The faulted vCPU cannot run on: the run ends with the fault's outcome, and finish_run()
      // answers this resume with the W/X packet.
      pending_ = std::move(on_stop);
      end_fault = true;
    } else {
      // A stop that lost the race with an earlier report is reported now, if gdb still has the
      // breakpoint that caused it (it removes and re-inserts them around every stop). Finished
      // steps are not: the thread stays where the step left it.
      std::erase_if(stops_, [this](const PendingStop& stop) {
        if (!stop.breakpoint) return true;
        return std::none_of(breakpoints_.begin(), breakpoints_.end(),
                            [&](const GdbBreakpoint& b) { return b.request == *stop.breakpoint; });
      });
      pending_ = std::move(on_stop);
      interrupt_requested_ = false;
      held_ = false;
      attach_stopped_it_ = false;  // gdb has taken over the run
      report_pending = !stops_.empty() || machine_.finishing();
    }
  }
  if (now) {
    on_stop(*now);
    return;
  }
  if (end_fault) {
    end_held_fault();
    return;
  }
  if (report_pending) {
    changed_.notify_all();
    return;
  }
  if (history_ && history_->in_past()) {
    // From a position in the past gdb's moves replay the recording up to the present, and go on
    // live from there (finish_move).
    const gdbstub::ThreadAction action = request.action_for(1);
    if (action != gdbstub::ThreadAction::kStayStopped) {
      start_move(false, action == gdbstub::ThreadAction::kStep);
    }
    return;
  }
  for (int thread = 1; thread <= thread_count(); ++thread) {
    const auto vcpu = static_cast<unsigned>(thread - 1);
    switch (request.action_for(thread)) {
      case gdbstub::ThreadAction::kContinue:
        controller_.resume(vcpu);
        break;
      case gdbstub::ThreadAction::kStep:
        controller_.single_step(vcpu);
        break;
      case gdbstub::ThreadAction::kStayStopped:
        break;
    }
  }
}

void GdbTarget::interrupt() {
  // A move reports the interrupted stop itself; when none runs, the live run takes the Ctrl-C.
  if (history_ && history_->interrupt()) return;
  {
    std::lock_guard lock(mutex_);
    if (!pending_) return;
    interrupt_requested_ = true;
  }
  changed_.notify_all();
}

void GdbTarget::on_controller_stop(unsigned vcpu, const debug::StopInfo& info) {
  if (history_ && history_->moving()) {
    history_->machine().on_stop(info);  // a replay's stop
    return;
  }
  PendingStop stop;
  stop.event.reason = StopReason::kTrap;
  stop.event.thread = static_cast<gdbstub::ThreadId>(vcpu + 1);
  bool orphan = false;
  {
    std::lock_guard lock(mutex_);
    orphan = !attached_;
  }
  if (orphan) {
    // gdb left after this vCPU decided to stop: let it run on (on its own thread, resume()
    // cancels the park).
    controller_.resume(vcpu);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (info.kind == debug::StopKind::kStep) {
      stop.event.cause = TrapCause::kStep;
    } else {
      for (const GdbBreakpoint& breakpoint : breakpoints_) {
        const auto it = std::find(breakpoint.events.begin(), breakpoint.events.end(), info.event);
        if (it == breakpoint.events.end()) continue;
        stop.breakpoint = breakpoint.request;
        stop.event.cause = trap_cause(breakpoint.request.kind);
        if (info.kind == debug::StopKind::kWatchpoint) {
          stop.access = info.access;
          // gdb looks the address up among its watchpoints: report the first watched byte the
          // access touched.
          const bp::BpAttr& piece =
              breakpoint.pieces[static_cast<std::size_t>(it - breakpoint.events.begin())];
          stop.event.data_address =
              info.access ? std::max(info.access->linear, breakpoint.request.address) : piece.addr;
        }
        break;
      }
    }
    stops_.push_back(std::move(stop));
  }
  changed_.notify_all();
}

void GdbTarget::coordinator_main() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(
        lock, [this] { return quit_ || (pending_ && (interrupt_requested_ || !stops_.empty())); });
    if (quit_) return;
    // Run control is serialised with attach/resume/detach: take it without holding mutex_.
    lock.unlock();
    std::unique_lock control(control_);
    lock.lock();
    if (!pending_ || (!interrupt_requested_ && stops_.empty())) continue;  // detached meanwhile
    PendingStop stop;
    stop.event = StopEvent{StopReason::kInterrupted, 1};
    if (!stops_.empty()) {
      stop = stops_.front();
      stops_.pop_front();
    }
    const StopEvent event = stop.event;
    interrupt_requested_ = false;
    if (event.reason == StopReason::kSignal) fault_reported_ = true;
    lock.unlock();
    machine_.pause_all();  // all-stop; a vCPU that stopped itself is already parked
    if (!machine_.finishing()) record_live_stop(stop);
    lock.lock();
    gdbstub::StopHandler handler = std::exchange(pending_, {});
    lock.unlock();
    control.unlock();
    if (handler) handler(event);
    lock.lock();
  }
}

void GdbTarget::detach() {
  std::lock_guard control(control_);
  {
    std::lock_guard lock(mutex_);
    attached_ = false;
    held_ = false;
    pending_ = {};
    interrupt_requested_ = false;
    stops_.clear();
  }
  changed_.notify_all();
  leave_the_past();
  remove_all_breakpoints();
  bool faulted = false;
  {
    std::lock_guard lock(mutex_);
    faulted = fault_.has_value();
  }
  if (faulted) {
    end_held_fault();  // "run on" from a fault is the end the fault would have had
    return;
  }
  // resume() waits until a vCPU that is about to park has parked, so none stays behind.
  for (std::size_t vcpu = 0; vcpu < machine_.vcpu_count(); ++vcpu) {
    controller_.resume(static_cast<unsigned>(vcpu));
  }
}

void GdbTarget::disconnect(bool client_sent_packets) {
  std::lock_guard control(control_);
  bool run_on = false;
  {
    std::lock_guard lock(mutex_);
    attached_ = false;
    pending_ = {};
    interrupt_requested_ = false;
    stops_.clear();
    // A port probe must not stop a free-running (--gdb-no-wait) guest for good.
    run_on = !client_sent_packets && attach_stopped_it_ && !fault_;
    attach_stopped_it_ = false;
  }
  changed_.notify_all();
  // A vanished gdb cannot remove its breakpoints; the vCPUs keep their state (held, stopped or
  // running) for the next gdb, as QEMU's stub does.
  leave_the_past();
  remove_all_breakpoints();
  if (run_on) {
    for (std::size_t vcpu = 0; vcpu < machine_.vcpu_count(); ++vcpu) {
      controller_.resume(static_cast<unsigned>(vcpu));
    }
  }
}

int GdbTarget::fault_signal(RunOutcome::Kind kind) {
  switch (kind) {
    case RunOutcome::Kind::kTripleFault:
      return SIGSEGV;
    case RunOutcome::Kind::kHalted:
      return SIGTRAP;
    case RunOutcome::Kind::kInternalError:
      return SIGILL;
    case RunOutcome::Kind::kExitPort:
    case RunOutcome::Kind::kTimeout:
    case RunOutcome::Kind::kKilled:
    case RunOutcome::Kind::kInterrupted:
      break;
  }
  return SIGILL;
}

bool GdbTarget::hold_fault(VcpuRunner& vcpu, const RunOutcome& outcome) {
  if (history_ && history_->moving()) {
    // A replay that faults has left the recorded run (the live run did not fault there).
    history_->machine().on_fault(outcome.report);
    return true;
  }
  {
    std::lock_guard lock(mutex_);
    if (!attached_) return false;  // no gdb to inspect it: the run ends as without --gdb
    if (!fault_) {
      fault_ = outcome;
      fault_event_ = StopEvent{};
      fault_event_.reason = StopReason::kSignal;
      fault_event_.thread = static_cast<gdbstub::ThreadId>(vcpu.index() + 1);
      fault_event_.signal = fault_signal(outcome.kind);
      PendingStop stop;
      stop.event = fault_event_;
      stops_.push_back(std::move(stop));
    }
  }
  changed_.notify_all();
  return true;
}

void GdbTarget::end_held_fault() {
  RunOutcome outcome;
  {
    std::lock_guard lock(mutex_);
    if (!fault_) return;
    outcome = *fault_;
  }
  machine_.finish(std::move(outcome));  // never joins: the main thread sees the run end
}

void GdbTarget::kill() {
  {
    std::lock_guard lock(mutex_);
    attached_ = false;
    pending_ = {};
    interrupt_requested_ = false;
    stops_.clear();
  }
  changed_.notify_all();
  RunOutcome outcome;
  outcome.kind = RunOutcome::Kind::kKilled;
  outcome.status = status::kKilled;
  outcome.report = "drvm: gdb: killed the guest (gdb kill)\n";
  machine_.finish(std::move(outcome));  // never joins: the main thread sees the run end
}

StopEvent GdbTarget::end_event(const RunOutcome& outcome) const {
  StopEvent event;
  event.thread = static_cast<gdbstub::ThreadId>(outcome.vcpu + 1);
  event.reason = StopReason::kTerminated;
  switch (outcome.kind) {
    case RunOutcome::Kind::kExitPort:
      event.reason = StopReason::kExited;
      event.exit_status = static_cast<int>(outcome.exit_value & 0xff);
      break;
    case RunOutcome::Kind::kTimeout:
      event.signal = SIGALRM;
      break;
    case RunOutcome::Kind::kHalted:
    case RunOutcome::Kind::kTripleFault:
    case RunOutcome::Kind::kInternalError:
      event.signal = fault_signal(outcome.kind);  // the signal of the stop gdb may have seen
      break;
    case RunOutcome::Kind::kKilled:
      event.signal = SIGKILL;
      break;
    case RunOutcome::Kind::kInterrupted:
      event.signal = SIGINT;
      break;
  }
  return event;
}

void GdbTarget::finish_run(const RunOutcome& outcome, std::chrono::milliseconds grace) {
  gdbstub::StopHandler handler;
  {
    std::lock_guard lock(mutex_);
    outcome_ = outcome;
    handler = std::exchange(pending_, {});
  }
  if (!handler) return;
  handler(end_event(outcome));
  // gdb hangs up after W/X in `target remote` mode; that detaches us.
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, grace, [this] { return !attached_; });
}

// ---------------------------------------------------------------------------------------------
// State (every vCPU is stopped)

VcpuRegisterState GdbTarget::register_state(unsigned vcpu) {
  Vcpu& cpu = machine_.vcpu(vcpu).vcpu();
  return {cpu.regs(), cpu.sregs(), cpu.fpu(), cpu.msr(kMsrKernelGsBase),
          controller_.guest_debug_regs(vcpu)};
}

gdbstub::Status GdbTarget::read_registers(gdbstub::ThreadId thread, gdbstub::Registers& out) {
  if (!valid_thread(thread)) return gdbstub::Status::failure(kErrorInvalid, "no such thread");
  const auto vcpu = static_cast<unsigned>(thread - 1);
  try {
    out = to_gdb_registers(register_state(vcpu));
    return gdbstub::Status::success();
  } catch (const KvmError& error) {
    return gdbstub::Status::failure(kErrorIo, error.what());
  }
}

gdbstub::Status GdbTarget::write_registers(gdbstub::ThreadId thread, const gdbstub::Registers& in) {
  if (!valid_thread(thread)) return gdbstub::Status::failure(kErrorInvalid, "no such thread");
  if (history_ && history_->in_past()) {
    return gdbstub::Status::failure(
        kErrorInvalid,
        "the registers of a recorded past state cannot be changed; continue to the "
        "present first");
  }
  const auto vcpu = static_cast<unsigned>(thread - 1);
  try {
    Vcpu& cpu = machine_.vcpu(vcpu).vcpu();
    VcpuRegisterState state = register_state(vcpu);
    const QwordReader read_qword = [&](std::uint64_t linear) -> std::optional<std::uint64_t> {
      std::uint64_t value = 0;
      const auto bytes = std::as_writable_bytes(std::span(&value, 1));
      if (!machine_.read_virtual(vcpu, linear, bytes).ok()) return std::nullopt;
      return value;
    };
    const RegisterChanges changed = apply_gdb_registers(in, state, read_qword);
    if (changed.sregs) cpu.set_sregs(state.sregs);
    if (changed.regs) {
      cpu.set_regs(state.regs);
      // A stop not reported yet no longer describes where this thread is.
      std::lock_guard lock(mutex_);
      std::erase_if(stops_,
                    [thread](const PendingStop& stop) { return stop.event.thread == thread; });
    }
    if (changed.fpu) cpu.set_fpu(state.fpu);
    if (changed.kernel_gs_base) cpu.set_msr(kMsrKernelGsBase, state.kernel_gs_base);
    if (changed.debug) {
      if (const auto error = controller_.set_guest_debug_regs(vcpu, state.debug)) {
        return gdbstub::Status::failure(
            kErrorNoSpace, fmt::format("the guest's debug registers were written but a "
                                       "breakpoint could not be armed: {}",
                                       bp::error_message(*error)));
      }
    }
    if (history_ &&
        (changed.regs || changed.sregs || changed.fpu || changed.kernel_gs_base || changed.debug)) {
      history_->live_modified();
    }
    return gdbstub::Status::success();
  } catch (const KvmError& error) {
    return gdbstub::Status::failure(kErrorIo, error.what());
  }
}

std::size_t GdbTarget::read_memory(gdbstub::ThreadId thread, std::uint64_t address,
                                   std::span<std::uint8_t> out) {
  if (!valid_thread(thread)) return 0;
  return controller_.read_original(static_cast<unsigned>(thread - 1), address, out);
}

std::size_t GdbTarget::write_memory(gdbstub::ThreadId thread, std::uint64_t address,
                                    std::span<const std::uint8_t> in) {
  if (!valid_thread(thread)) return 0;
  if (history_ && history_->in_past()) return 0;  // the past cannot be changed
  const std::size_t written =
      controller_.write_memory(static_cast<unsigned>(thread - 1), address, in);
  if (history_ && written > 0) history_->live_modified();
  return written;
}

// ---------------------------------------------------------------------------------------------
// Reverse execution

bool GdbTarget::can_reverse() const {
  return true;  // bc and bs always reach reverse_resume, which says why when it cannot
}

std::vector<replay::Trigger> GdbTarget::triggers() const {
  std::lock_guard lock(mutex_);
  std::vector<replay::Trigger> out;
  for (const GdbBreakpoint& breakpoint : breakpoints_) {
    replay::Trigger trigger;
    trigger.address = breakpoint.request.address;
    trigger.length = breakpoint.request.length;
    switch (breakpoint.request.kind) {
      case BreakpointKind::kSoftware:
      case BreakpointKind::kHardware:
        trigger.kind = replay::TriggerKind::kExecute;
        trigger.length = 1;
        break;
      case BreakpointKind::kWrite:
        trigger.kind = replay::TriggerKind::kWrite;
        break;
      case BreakpointKind::kRead:
        trigger.kind = replay::TriggerKind::kRead;
        break;
      case BreakpointKind::kAccess:
        trigger.kind = replay::TriggerKind::kAccess;
        break;
    }
    out.push_back(trigger);
  }
  return out;
}

void GdbTarget::set_gdb_events_enabled(bool enabled) {
  std::vector<bp::EventId> events;
  {
    std::lock_guard lock(mutex_);
    for (const GdbBreakpoint& breakpoint : breakpoints_) {
      events.insert(events.end(), breakpoint.events.begin(), breakpoint.events.end());
    }
  }
  for (const bp::EventId id : events) {
    (void)(enabled ? controller_.enable_event(id) : controller_.disable_event(id));
  }
}

gdbstub::Status GdbTarget::reverse_resume(gdbstub::ThreadId thread, gdbstub::ThreadAction action,
                                          gdbstub::StopHandler on_stop) {
  constexpr int kErrorNotSupported = 38;  // ENOSYS
  if (!history_) {
    return gdbstub::Status::failure(
        kErrorNotSupported,
        machine_.vcpu_count() > 1
            ? fmt::format("reverse execution needs a single vCPU and this run has {}; run with "
                          "--cpus 1",
                          machine_.vcpu_count())
            : std::string("reverse execution is off (--history 0); give --history a budget"));
  }
  if (!valid_thread(thread) && thread != 0 && thread != -1) {
    return gdbstub::Status::failure(kErrorInvalid, "no such thread");
  }
  if (const auto why = history_->refusal()) {
    return gdbstub::Status::failure(kErrorNotSupported, "reverse execution is refused: " + *why);
  }
  std::lock_guard control(control_);
  {
    std::lock_guard lock(mutex_);
    if (outcome_ || fault_) {
      return gdbstub::Status::failure(kErrorInvalid, "the guest's run has ended");
    }
    stops_.clear();
    pending_ = std::move(on_stop);
    interrupt_requested_ = false;
    held_ = false;
    attach_stopped_it_ = false;
  }
  start_move(true, action == gdbstub::ThreadAction::kStep);
  return gdbstub::Status::success();
}

void GdbTarget::start_move(bool backward, bool step) {
  set_gdb_events_enabled(false);
  if (session_counting_) session_counting_(false);
  history_->move(backward, step, triggers(),
                 [this, step](const replay::MoveResult& result) { finish_move(result, step); });
}

void GdbTarget::finish_move(const replay::MoveResult& result, bool step) {
  set_gdb_events_enabled(true);
  if (session_counting_ && !history_->in_past()) session_counting_(true);
  if (result.kind == replay::MoveResult::Kind::kPresent) {
    // The present, reached by replaying: the rest of gdb's move runs live, unless gdb went away
    // or a Ctrl-C came meanwhile (the coordinator then reports that stop).
    std::lock_guard control(control_);
    {
      std::lock_guard lock(mutex_);
      if (!pending_ || interrupt_requested_ || !stops_.empty()) return;
    }
    if (step) {
      controller_.single_step(0);
    } else {
      controller_.resume(0);
    }
    return;
  }
  StopEvent event{StopReason::kTrap, 1, TrapCause::kStep};
  switch (result.kind) {
    case replay::MoveResult::Kind::kHit: {
      std::lock_guard lock(mutex_);
      for (const GdbBreakpoint& breakpoint : breakpoints_) {
        const bool exec = breakpoint.request.kind == BreakpointKind::kSoftware ||
                          breakpoint.request.kind == BreakpointKind::kHardware;
        const bool same_kind =
            exec ? result.trigger->kind == replay::TriggerKind::kExecute
                 : event_type(breakpoint.request.kind) ==
                       (result.trigger->kind == replay::TriggerKind::kWrite ? bp::BpType::kWrite
                        : result.trigger->kind == replay::TriggerKind::kRead
                            ? bp::BpType::kRead
                            : bp::BpType::kReadWrite);
        if (breakpoint.request.address != result.trigger->address || !same_kind ||
            (!exec && breakpoint.request.length != result.trigger->length)) {
          continue;
        }
        event.cause = trap_cause(breakpoint.request.kind);
        event.data_address = breakpoint.request.address;
        break;
      }
      break;
    }
    case replay::MoveResult::Kind::kHistoryStart:
      event.cause = TrapCause::kUnspecified;
      event.history_start = true;
      break;
    case replay::MoveResult::Kind::kInterrupted:
      event.reason = StopReason::kInterrupted;
      break;
    case replay::MoveResult::Kind::kFailed:
      fmt::print(stderr, "drvm: gdb: reverse execution stopped: {}; back at the present\n",
                 result.why);
      event.cause = TrapCause::kUnspecified;
      break;
    case replay::MoveResult::Kind::kStep:
    case replay::MoveResult::Kind::kPresent:
      break;
  }
  gdbstub::StopHandler handler;
  {
    std::lock_guard lock(mutex_);
    handler = std::exchange(pending_, {});
  }
  if (handler) handler(event);
}

void GdbTarget::record_live_stop(const PendingStop& stop) {
  if (!history_) return;
  replay::LiveStop live;
  switch (stop.event.reason) {
    case StopReason::kTrap:
      live.kind = stop.event.cause == TrapCause::kStep ? replay::LiveStop::Kind::kStep
                                                       : replay::LiveStop::Kind::kHit;
      break;
    case StopReason::kInterrupted:
      live.kind = replay::LiveStop::Kind::kInterrupt;
      break;
    case StopReason::kSignal:
    case StopReason::kExited:
    case StopReason::kTerminated:
      live.kind = replay::LiveStop::Kind::kFault;
      break;
  }
  if (live.kind == replay::LiveStop::Kind::kHit) {
    if (!stop.breakpoint) {
      live.kind = replay::LiveStop::Kind::kInterrupt;  // held at the start: found by its state
    } else {
      const gdbstub::Breakpoint& b = *stop.breakpoint;
      replay::Trigger trigger{replay::TriggerKind::kExecute, b.address, 1};
      if (b.kind == BreakpointKind::kWrite)
        trigger = {replay::TriggerKind::kWrite, b.address, b.length};
      if (b.kind == BreakpointKind::kRead)
        trigger = {replay::TriggerKind::kRead, b.address, b.length};
      if (b.kind == BreakpointKind::kAccess) {
        trigger = {replay::TriggerKind::kAccess, b.address, b.length};
      }
      live.trigger = trigger;
      live.access = stop.access;
    }
  }
  try {
    history_->live_stopped(live);
  } catch (const std::exception& error) {
    fmt::print(stderr, "drvm: gdb: reverse execution is off from here: {}\n", error.what());
  }
}

void GdbTarget::leave_the_past() {
  if (!history_) return;
  if (history_->moving()) {
    history_->interrupt();
    while (history_->moving()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  try {
    history_->return_to_present();
  } catch (const std::exception& error) {
    fmt::print(stderr, "drvm: gdb: could not return to the present: {}\n", error.what());
  }
  if (session_counting_) session_counting_(true);
}

// ---------------------------------------------------------------------------------------------
// Breakpoints

gdbstub::Status GdbTarget::insert_breakpoint(const gdbstub::Breakpoint& breakpoint) {
  const bp::BpType type = event_type(breakpoint.kind);
  GdbBreakpoint entry;
  entry.request = breakpoint;
  // Z0/Z1 carry gdb's breakpoint "kind" (instruction length hint) in `length`: one byte on x86.
  // A watch needing more pieces than a vCPU has slots could never be armed.
  const std::size_t slots = controller_.options().slots;
  entry.pieces = type == bp::BpType::kExecute
                     ? std::vector<bp::BpAttr>{bp::BpAttr{breakpoint.address, 1, type}}
                     : watch_pieces(breakpoint.address, breakpoint.length, type, slots);
  if (entry.pieces.empty()) {
    const std::uint64_t length = breakpoint.length;
    if (length == 0 || breakpoint.address + (length - 1) < breakpoint.address) {
      return gdbstub::Status::failure(kErrorInvalid, "empty or wrapping address range");
    }
    return gdbstub::Status::failure(
        kErrorNoSpace, fmt::format("a watch of {:#x} bytes needs more than the {} debug-register "
                                   "slots of a vCPU (8 bytes each); watch a smaller range",
                                   length, slots));
  }
  for (const bp::BpAttr& piece : entry.pieces) {
    bp::EventSpec spec;
    spec.attr = piece;
    spec.binding = bp::Binding::target_all(debug::kGdbOwner);
    spec.pinned = true;
    const auto created = controller_.create_event(spec);
    if (!created) {
      for (const bp::EventId id : entry.events) (void)controller_.destroy_event(id);
      return manager_failure(created.error());
    }
    entry.events.push_back(created.value());
  }
  // Admitted is not armed: other owners' events (a session's, or an exclusive one) may hold the
  // slots. gdb must hear that now, not find a breakpoint that never stops.
  for (const bp::EventId id : entry.events) {
    const auto state = controller_.event_state(id);
    if (state && state.value() != bp::EventState::kError) continue;
    const bp::PlaceError why = [&] {
      const auto reading = controller_.read_event(id);
      return reading ? reading.value().place_error : bp::PlaceError::kNone;
    }();
    for (const bp::EventId created : entry.events) (void)controller_.destroy_event(created);
    return gdbstub::Status::failure(
        kErrorNoSpace,
        fmt::format("the breakpoint cannot be placed: {}; remove other "
                    "breakpoints or raise --slots",
                    *bp::place_error_text(why) ? bp::place_error_text(why) : "no slot"));
  }
  std::lock_guard lock(mutex_);
  const auto earlier =
      std::find_if(removed_.begin(), removed_.end(),
                   [&](const RemovedBreakpoint& removed) { return removed.request == breakpoint; });
  if (earlier != removed_.end()) {
    entry.earlier_hits = earlier->hits;
    removed_.erase(earlier);
  }
  breakpoints_.push_back(std::move(entry));
  return gdbstub::Status::success();
}

std::uint64_t GdbTarget::total_hits(const GdbBreakpoint& entry) {
  std::uint64_t hits = entry.earlier_hits;
  for (const bp::EventId id : entry.events) {
    if (const auto reading = controller_.read_event(id)) hits += reading.value().value;
  }
  return hits;
}

void GdbTarget::retain_hits(const GdbBreakpoint& entry) {
  const std::uint64_t hits = total_hits(entry);
  std::lock_guard lock(mutex_);
  std::erase_if(removed_,
                [&](const RemovedBreakpoint& removed) { return removed.request == entry.request; });
  removed_.push_back(RemovedBreakpoint{entry.request, hits});
}

gdbstub::Status GdbTarget::remove_breakpoint(const gdbstub::Breakpoint& breakpoint) {
  GdbBreakpoint entry;
  {
    std::lock_guard lock(mutex_);
    const auto it = std::find_if(breakpoints_.begin(), breakpoints_.end(),
                                 [&](const GdbBreakpoint& b) { return b.request == breakpoint; });
    if (it == breakpoints_.end()) {
      return gdbstub::Status::failure(kErrorNoEntry, "no such breakpoint or watchpoint");
    }
    entry = std::move(*it);
    breakpoints_.erase(it);
  }
  retain_hits(entry);
  for (const bp::EventId id : entry.events) (void)controller_.destroy_event(id);
  return gdbstub::Status::success();
}

void GdbTarget::remove_all_breakpoints() {
  std::vector<GdbBreakpoint> removed;
  {
    std::lock_guard lock(mutex_);
    removed.swap(breakpoints_);
  }
  for (const GdbBreakpoint& entry : removed) {
    retain_hits(entry);
    for (const bp::EventId id : entry.events) (void)controller_.destroy_event(id);
  }
}

void GdbTarget::set_session_counting(std::function<void(bool live)> counting) {
  session_counting_ = std::move(counting);
}

void GdbTarget::set_session_events(std::function<std::string()> describe) {
  std::lock_guard lock(mutex_);
  session_events_ = std::move(describe);
}

std::string GdbTarget::monitor_command(std::string_view command) {
  MonitorState state;
  {
    std::lock_guard lock(mutex_);
    state.breakpoints = breakpoints_;
    state.removed = removed_;
    state.session_events = session_events_;
  }
  state.history = history_.get();
  return run_monitor_command(command, machine_, controller_, state);
}

}  // namespace drvm::vmm
