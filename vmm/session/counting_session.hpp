// A counting session (`drvm run --event ... --stat --trace --record`): creates the events through
// the DebugController as kSessionOwner, counts hits per vCPU, writes trace and record lines on the
// vCPU threads, multiplexes flexible events that outnumber their slots, and produces the stat at
// the end of the run.
//
// Time: a multiplexed count is scaled by time enabled / time running. Both are vCPU time, the CPU
// time of the vCPU threads from the guest's first run with the events armed (like perf's
// task-clock), so neither setup nor a loaded host looks like guest progress. The session is the
// link in front of the controller in the machine's interceptor chain: it samples that clock at
// every exit and, on the vCPU thread right before the controller re-arms, applies the rotations
// bpcore's Multiplexer decides on that clock (which also keeps the rotated events' times).
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

#include "bpcore/rotation.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/session/event_plan.hpp"
#include "vmm/session/hit_log.hpp"
#include "vmm/session/session_plan.hpp"
#include "vmm/session/stat_report.hpp"
#include "vmm/session/symbol_table.hpp"

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

 private:
  struct Event {
    PlannedEvent plan;
    bp::EventId id;
    bool rotated = false;  // one of multiplexer_'s events
    std::atomic<std::uint64_t> samples{0};
    // Enabled before every vCPU had entered the guest once (not counted as enabled); under
    // setup_mutex_.
    std::uint64_t setup_ns = 0;
  };
  // Per vCPU: its thread's CPU time, sampled on that thread.
  struct VcpuClock {
    std::atomic<bool> started{false};
    std::atomic<bool> entered{false};       // its thread's first entering_guest() happened
    std::atomic<std::uint64_t> base_ns{0};  // at the thread's first before_run()
    std::atomic<std::uint64_t> cpu_ns{0};   // at its latest exit
    std::atomic<std::uint64_t> exits{0};    // exits and interruptions so far
  };
  // ExitInterceptor, ahead of the controller: samples the clock and slides the window before the
  // controller's before_run(); the first entry with the events armed sets the time origin, each
  // vCPU's first entry ends the setup time of the events bound to it.
  void before_run(VcpuRunner& vcpu) override;
  void entering_guest(VcpuRunner& vcpu) override;
  std::optional<ExitAction> on_exit(VcpuRunner& vcpu, const VmExit& exit) override;
  ExitAction on_interrupted(VcpuRunner& vcpu) override;
  void sample_clock(unsigned vcpu);
  void take_time_origin();
  void take_setup_time();              // every event's setup_ns, as of now
  std::uint64_t vcpu_time_ns() const;  // summed over the vCPUs that ran
  void maybe_rotate();                 // vCPU thread
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
  std::vector<std::size_t> rotated_;  // indices into events_, in multiplexer_'s order
  std::vector<std::atomic<std::uint64_t>> per_vcpu_;  // [vcpu * events + event]
  std::unique_ptr<VcpuClock[]> clocks_;

  using FileCloser = int (*)(std::FILE*);
  std::unique_ptr<std::FILE, FileCloser> record_file_{nullptr, &std::fclose};
  std::unique_ptr<std::FILE, FileCloser> stat_file_{nullptr, &std::fclose};
  std::unique_ptr<HitLog> trace_;
  std::unique_ptr<HitLog> record_;

  Machine& machine_;
  std::atomic<unsigned> vcpus_entered_{0};
  std::mutex setup_mutex_;
  std::atomic<bool> has_time_origin_{false};
  std::chrono::steady_clock::time_point time_origin_;  // the guest's first run with events armed
  std::optional<std::chrono::steady_clock::time_point> finished_;
  // Multiplexing state, under rotation_mutex_. bpcore's Multiplexer decides, on vCPU time,
  // when the flexible events rotate and which hold the slots; the session applies it.
  std::mutex rotation_mutex_;
  std::condition_variable rotation_wake_;
  bool stop_ = false;
  bp::Multiplexer multiplexer_;
  std::thread kick_thread_;
};

}  // namespace drvm::vmm::session
