// GdbTarget: the gdb stub's DebugTarget over a Machine and its DebugController. vCPU i is gdb
// thread i + 1. Breakpoints and watchpoints become pinned host events of owner kGdbOwner in the
// controller (one per naturally aligned piece of a watched range); the controller's engines make
// them fire and stop the vCPU. All-stop: the first vCPU to stop stops the others, on a
// coordinator thread (stopping the others from a vCPU thread could deadlock two vCPUs stopping
// each other), which then calls the pending StopHandler once.
//
// Threading (gdbstub/debug_target.hpp): DebugTarget methods run on the stub's thread; the
// controller's hit and stop callbacks on vCPU threads; finish_run() on the thread that ran
// Machine::run().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bpcore/types.hpp"
#include "gdbstub/debug_target.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/gdb/gdb_registers.hpp"
#include "vmm/machine.hpp"
#include "vmm/replay/history.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::vmm {

// One gdb Z packet and the controller events that implement it.
struct GdbBreakpoint {
  gdbstub::Breakpoint request;
  std::vector<bp::EventId> events;
  std::vector<bp::BpAttr> pieces;  // events[i] watches pieces[i]
  // Hits of earlier insertions of the same breakpoint (type, address, length): gdb removes and
  // re-inserts its breakpoints around every stop, and `monitor events` counts across that.
  std::uint64_t earlier_hits = 0;
};

// A breakpoint gdb inserted earlier in the run and has removed (for now), with its hits.
struct RemovedBreakpoint {
  gdbstub::Breakpoint request;
  std::uint64_t hits = 0;
};

using bp::watch_pieces;  // bpcore/attributes.hpp

class GdbTarget final : public gdbstub::DebugTarget {
 public:
  // hold_at_start: the guest waits before its first instruction until gdb resumes it (every vCPU
  // is paused now, before Machine::run() starts the threads). Otherwise it runs and an attaching
  // gdb stops it. Installs the controller's gdb hit callback and its stop callback.
  // history_budget: bytes reverse execution may keep (docs/gdb.md, Reverse execution); 0 turns
  // it off. A machine with more than one vCPU has none.
  // `log`: the machine's exit log, if it has one (drvm replay, --recording).
  GdbTarget(Machine& machine, debug::DebugController& controller, bool hold_at_start,
            std::uint64_t history_budget = 0, replay::ExitLog* log = nullptr);
  ~GdbTarget() override;
  GdbTarget(const GdbTarget&) = delete;
  GdbTarget& operator=(const GdbTarget&) = delete;

  // After Machine::run() returned: tells an attached gdb how the run ended (W for an exit-port
  // write, X otherwise) and waits up to `grace` for it to hang up, so the reply reaches it before
  // the server closes. Returns at once when no gdb waits for a stop.
  void finish_run(const RunOutcome& outcome, std::chrono::milliseconds grace);

  // --- gdbstub::DebugTarget (the stub's thread) ---
  int thread_count() const override;
  void attach(gdbstub::StopHandler on_stop) override;
  void resume(const gdbstub::ResumeRequest& request, gdbstub::StopHandler on_stop) override;
  bool can_reverse() const override;
  gdbstub::Status reverse_resume(gdbstub::ThreadId thread, gdbstub::ThreadAction action,
                                 gdbstub::StopHandler on_stop) override;
  void interrupt() override;
  gdbstub::Status read_registers(gdbstub::ThreadId thread, gdbstub::Registers& out) override;
  gdbstub::Status write_registers(gdbstub::ThreadId thread, const gdbstub::Registers& in) override;
  std::size_t read_memory(gdbstub::ThreadId thread, std::uint64_t address,
                          std::span<std::uint8_t> out) override;
  std::size_t write_memory(gdbstub::ThreadId thread, std::uint64_t address,
                           std::span<const std::uint8_t> in) override;
  gdbstub::Status insert_breakpoint(const gdbstub::Breakpoint& breakpoint) override;
  gdbstub::Status remove_breakpoint(const gdbstub::Breakpoint& breakpoint) override;
  std::string monitor_command(std::string_view command) override;
  void detach() override;
  void disconnect(bool client_sent_packets) override;
  void kill() override;

  // `monitor events` also lists the counting session's --event events: this gives their text.
  // Set before the server starts; called on the stub's thread while the vCPUs are stopped.
  void set_session_events(std::function<std::string()> describe);
  // Reverse execution replays what already ran, and the counting session must not count it
  // again: called with false when gdb's move leaves the live run and with true when the run is
  // live again (at the present). Set before the server starts.
  void set_session_counting(std::function<void(bool live)> counting);

  // The signal gdb is told for a fault held for inspection (docs/gdb.md): SIGSEGV for a triple
  // fault, SIGTRAP for a halt, SIGILL for a KVM internal error or emulation failure.
  static int fault_signal(RunOutcome::Kind kind);

 private:
  // Everything gdb's register file shows of `vcpu` (may throw KvmError).
  VcpuRegisterState register_state(unsigned vcpu);
  // A stop a vCPU reported that no StopHandler has consumed yet.
  struct PendingStop {
    gdbstub::StopEvent event;
    std::optional<gdbstub::Breakpoint> breakpoint;  // the gdb breakpoint that caused it
    std::optional<debug::AccessInfo> access;        // a watchpoint's access
  };
  // Reverse execution: tells the history how the live run stopped (every vCPU paused).
  void record_live_stop(const PendingStop& stop);
  // Runs a move through the history (gdb's breakpoints are the watched triggers; their own
  // events rest meanwhile); the pending handler gets its stop, or the move goes on live.
  void start_move(bool backward, bool step);
  void finish_move(const replay::MoveResult& result, bool step);
  // Gives up a position in the past (detach, disconnect): back to the present.
  void leave_the_past();
  std::vector<replay::Trigger> triggers() const;
  void set_gdb_events_enabled(bool enabled);

  bool valid_thread(gdbstub::ThreadId thread) const;
  void on_controller_stop(unsigned vcpu, const debug::StopInfo& info);
  void coordinator_main();
  gdbstub::StopEvent end_event(const RunOutcome& outcome) const;
  // Machine's fault hold (a vCPU thread): with a gdb attached, a fault becomes a signal stop.
  bool hold_fault(VcpuRunner& vcpu, const RunOutcome& outcome);
  // Ends a run whose fault gdb inspected, with the fault's own outcome (once).
  void end_held_fault();
  void remove_all_breakpoints();
  // The entry's hits so far, earlier insertions included.
  std::uint64_t total_hits(const GdbBreakpoint& entry);
  // Keeps a removed entry's hits for a later re-insert of the same breakpoint.
  void retain_hits(const GdbBreakpoint& entry);

  Machine& machine_;
  debug::DebugController& controller_;

  // Serialises run control (attach, resume, detach, kill, the coordinator's stop-all) so a stop
  // never re-pauses vCPUs a detach just released.
  std::mutex control_;

  // Guards everything below (never held while pausing vCPUs or calling a handler).
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool attached_ = false;           // a gdb session is on (hit callbacks stop vCPUs)
  bool held_ = false;               // the guest has not run yet (held at its first instruction)
  bool attach_stopped_it_ = false;  // the current attach() stopped a running guest
  gdbstub::StopHandler pending_;    // the handler of the current attach/resume
  bool interrupt_requested_ = false;
  std::deque<PendingStop> stops_;  // vCPU stops not reported yet
  std::optional<RunOutcome> outcome_;
  // A fault held for gdb: the outcome it ends the run with, and the stop gdb was told.
  std::optional<RunOutcome> fault_;
  gdbstub::StopEvent fault_event_;
  bool fault_reported_ = false;  // gdb has seen the signal stop (a resume then ends the run)
  bool quit_ = false;
  std::vector<GdbBreakpoint> breakpoints_;
  std::vector<RemovedBreakpoint> removed_;  // every breakpoint removed and not re-inserted
  std::function<std::string()> session_events_;
  std::function<void(bool)> session_counting_;

  std::thread coordinator_;
  // Reverse execution (null with several vCPUs or --history 0). Declared last: destroyed first,
  // while the controller's callbacks still lead here.
  std::unique_ptr<replay::History> history_;
};

}  // namespace drvm::vmm
