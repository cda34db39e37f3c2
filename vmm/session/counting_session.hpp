// A counting session (`drvm run --event ... --stat --trace --record`): creates the events through
// the DebugController as kSessionOwner, counts hits per vCPU, writes trace and record lines on the
// vCPU threads, multiplexes flexible events that outnumber their slots, and produces the stat at
// the end of the run.
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
#include "vmm/session/rotation.hpp"
#include "vmm/session/session_plan.hpp"
#include "vmm/session/stat_report.hpp"
#include "vmm/session/symbol_table.hpp"

namespace drvm::vmm::session {

// How long the multiplexed window stays before it slides by one event (wall time while the guest
// runs; perf's default multiplexing interval is of the same order).
inline constexpr std::chrono::milliseconds kRotationInterval{4};

class CountingSession {
 public:
  // Opens --record and --stat-output and creates the plan's events (flexible ones beyond the free
  // slots wait for start()). `plan` must outlive the session. Throws PlanError ("--record: cannot
  // open ...", "--event 'SPEC': ...").
  CountingSession(debug::DebugController& debug, const SessionPlan& plan);
  ~CountingSession();
  CountingSession(const CountingSession&) = delete;
  CountingSession& operator=(const CountingSession&) = delete;

  // Starts the multiplexing clock (and its thread when events must rotate).
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
    bool rotated = false;  // multiplexed by this session's RotationSchedule
    std::atomic<std::uint64_t> samples{0};
  };
  static bp::HitAction on_overflow(void* context, const bp::Overflow& overflow);
  bool on_hit(const debug::HostHit& hit);
  void rotation_loop();
  void stop_rotation();

  debug::DebugController& debug_;
  const SessionPlan& plan_;
  const SessionOptions& options_;
  const SymbolTable& symbols_;
  unsigned vcpus_;
  unsigned slots_;  // what the controller's manager schedules onto
  std::vector<std::unique_ptr<Event>> events_;
  std::vector<std::size_t> rotated_;  // indices into events_, in rotation order
  RotationSchedule schedule_{0, 0};
  std::vector<std::atomic<std::uint64_t>> per_vcpu_;  // [vcpu * events + event]

  using FileCloser = int (*)(std::FILE*);
  std::unique_ptr<std::FILE, FileCloser> record_file_{nullptr, &std::fclose};
  std::unique_ptr<std::FILE, FileCloser> stat_file_{nullptr, &std::fclose};
  std::unique_ptr<HitLog> trace_;
  std::unique_ptr<HitLog> record_;

  std::chrono::steady_clock::time_point started_;
  std::optional<std::chrono::steady_clock::time_point> finished_;
  std::mutex rotation_mutex_;
  std::condition_variable rotation_wake_;
  bool stop_ = false;
  std::thread rotation_thread_;
};

}  // namespace drvm::vmm::session
