// A counting session (`drvm run --event ... --stat --trace --record`): creates the events through
// the DebugController as kSessionOwner, counts hits per vCPU, writes trace and record lines on the
// vCPU threads, multiplexes flexible events that outnumber their slots, and produces the stat at
// the end of the run.
//
// Time: a multiplexed count is scaled by time enabled / time running. Both are vCPU time
// (VcpuTime: the CPU time of the vCPU threads, like perf's task-clock), which the session gives
// the controller's breakpoint manager as its events' clock. Multiplexing is the manager's
// rotation: flexible events beyond the slots their pinned ones leave take turns, the window
// sliding by one event every kRotationInterval of vCPU time. The session is the link in front of
// the controller in the machine's interceptor chain: it samples the clock at every exit and, on
// each vCPU's thread right before the controller re-arms, turns that vCPU's ring once for every
// tick that passed, so that all vCPUs hold the same events.
//
// Lifetime: construct after the controller, before Machine::run(); start() right before run();
// finish() after run() returns; destroy before the controller.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "vmm/debug/debug_controller.hpp"
#include "vmm/session/event_plan.hpp"
#include "vmm/session/hit_log.hpp"
#include "vmm/session/session_plan.hpp"
#include "vmm/session/stat_report.hpp"
#include "vmm/session/symbol_table.hpp"
#include "vmm/session/vcpu_time.hpp"

namespace drvm::vmm::session {

// How long the multiplexed window stays before it slides by one event, in vCPU time (perf's default
// multiplexing interval is of the same order).
inline constexpr std::chrono::milliseconds kRotationInterval{4};

class CountingSession final : private ExitInterceptor {
 public:
  // Opens --record and --stat-output and creates the plan's events (flexible ones beyond the free
  // slots wait for their turn). `plan` must outlive the session. Throws PlanError ("--record:
  // cannot open ...", "--event 'SPEC': ..."). Joins `machine`'s interceptor chain in front of
  // `debug` (leaves it on destruction).
  CountingSession(debug::DebugController& debug, Machine& machine, const SessionPlan& plan);
  ~CountingSession() override;
  CountingSession(const CountingSession&) = delete;
  CountingSession& operator=(const CountingSession&) = delete;

  // When events must rotate: starts a thread that kicks a vCPU which has not exited for a whole
  // interval, so the window slides even while no watched access happens.
  void start();
  // Stops multiplexing, flushes --trace/--record, reads every event and writes --stat. Returns
  // false after printing a one-line error when an output could not be written.
  bool finish();
  // The counts as they are now (finish() uses it; tests may too).
  StatReport report();
  // Off while gdb's reverse execution replays what already ran (its hits are not new work):
  // every event is disabled and the vCPU clock held, so nothing counts, traces or adds time; on
  // again when the run is live. Any thread, while the vCPUs are stopped.
  void set_counting(bool on);

 private:
  struct Event {
    PlannedEvent plan;
    bp::EventId id;
    std::atomic<std::uint64_t> samples{0};
    // Enabled before every vCPU had entered the guest once (not counted as enabled); under
    // setup_mutex_.
    std::uint64_t setup_ns = 0;
  };
  // Per vCPU, touched on its own thread only.
  struct VcpuProgress {
    bool entered = false;     // its thread's first entering_guest() happened
    std::uint64_t ticks = 0;  // rotation ticks applied to its ring
  };
  // ExitInterceptor, ahead of the controller: samples the clock and slides the window before the
  // controller's before_run(); the first entry with the events armed sets the time origin, each
  // vCPU's first entry ends the setup time of the events bound to it.
  void before_run(VcpuRunner& vcpu) override;
  void entering_guest(VcpuRunner& vcpu) override;
  std::optional<ExitAction> on_exit(VcpuRunner& vcpu, const VmExit& exit) override;
  ExitAction on_interrupted(VcpuRunner& vcpu) override;
  void take_time_origin();
  void take_setup_time();            // every event's setup_ns, as of now
  void maybe_rotate(unsigned vcpu);  // vCPU thread
  void kick_loop();
  static bp::HitAction on_overflow(void* context, const bp::Overflow& overflow);
  bool on_hit(const debug::HostHit& hit);
  void stop_rotation();

  debug::DebugController& debug_;
  const SessionPlan& plan_;
  const SessionOptions& options_;
  const SymbolTable& symbols_;
  unsigned vcpus_;
  unsigned slots_;  // what the controller's manager schedules onto
  std::vector<std::unique_ptr<Event>> events_;
  std::vector<std::atomic<std::uint64_t>> per_vcpu_;  // [vcpu * events + event]
  VcpuTime clock_;
  std::unique_ptr<VcpuProgress[]> progress_;
  bool rotates_ = false;  // flexible events outnumber what the pinned ones leave them

  using FileCloser = int (*)(std::FILE*);
  std::unique_ptr<std::FILE, FileCloser> record_file_{nullptr, &std::fclose};
  std::unique_ptr<std::FILE, FileCloser> stat_file_{nullptr, &std::fclose};
  std::unique_ptr<HitLog> trace_;
  std::unique_ptr<HitLog> record_;

  Machine& machine_;
  std::atomic<unsigned> vcpus_entered_{0};
  bool counting_ = true;  // set_counting()
  std::mutex setup_mutex_;
  std::atomic<bool> has_time_origin_{false};
  std::chrono::steady_clock::time_point time_origin_;  // the guest's first run with events armed
  std::optional<std::chrono::steady_clock::time_point> finished_;
  // The kicker's state, under rotation_mutex_.
  std::mutex rotation_mutex_;
  std::condition_variable rotation_wake_;
  bool stop_ = false;
  std::thread kick_thread_;
};

}  // namespace drvm::vmm::session
