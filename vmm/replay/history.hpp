// History: reverse execution for a gdb session on a single-vCPU machine (docs/gdb.md, Reverse
// execution). It records the live run as gdb sees it: every stop (with how the run got there),
// the guest's exits to userspace (ExitLog), and snapshots often enough that any position is a
// short replay away. gdb's reverse moves (bc, bs) and forward moves made from a position in the
// past are answered by the Navigator over a KvmReplayMachine on History's own worker thread.
//
// Exactness first: the run is replayable only without asynchronous interrupts. At every live stop
// History asks the machine what could interrupt the vCPU (the local APIC timer, the PIT, COM1's
// receive interrupt, a pending interrupt); once something could, reverse execution is refused for
// the rest of the session with that reason. A replay that leaves the recorded path (different
// registers at a recorded stop, a different exit) is refused the same way, and the machine goes
// back to the present: gdb never sees a state that did not happen.
//
// The budget (--history) caps the snapshots' memory: the oldest history goes first.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vmm/debug/debug_controller.hpp"
#include "vmm/machine.hpp"
#include "vmm/replay/exit_log.hpp"
#include "vmm/replay/kvm_replay_machine.hpp"
#include "vmm/replay/navigator.hpp"

namespace drvm::vmm::replay {

struct HistoryOptions {
  std::uint64_t budget_bytes = 1024ULL << 20;  // snapshots and exit log; the oldest go first
  // A snapshot at least every this many stops, or this long after the last one.
  std::size_t snapshot_every_stops = 16;
  std::chrono::milliseconds snapshot_every{500};
};

// How the live run stopped (what gdb was told).
struct LiveStop {
  enum class Kind : std::uint8_t {
    kHit,        // the first hit of `trigger` since the last stop (a continue)
    kStep,       // one instruction (a step)
    kInterrupt,  // gdb's Ctrl-C, or the attach that stopped a running guest
    kFault,      // a triple fault or another end held for gdb
  };
  Kind kind = Kind::kInterrupt;
  std::optional<Trigger> trigger;
  // kHit of a data trigger: the access, to tell a stop inside a string instruction.
  std::optional<debug::AccessInfo> access;
};

// Where a move ended.
struct MoveResult {
  enum class Kind : std::uint8_t {
    kHit,           // at a hit of `trigger` (reverse: before the access for a watchpoint)
    kStep,          // one instruction away
    kHistoryStart,  // reverse: nothing earlier is recorded; at the oldest position
    kPresent,       // forward: back at the present without a hit; gdb's move goes on live
    kInterrupted,   // Ctrl-C: back where the move started
    kFailed,        // reverse execution stopped working (why); back at the present
  };
  Kind kind = Kind::kStep;
  std::optional<Trigger> trigger;
  bool data = false;
  std::string why;
};

// What the history holds now (`monitor history`).
struct HistoryStats {
  std::size_t stops = 0;      // live stops recorded since the session began
  std::size_t reachable = 0;  // of them, still reachable (not dropped for the budget)
  std::size_t snapshots = 0;  // snapshots kept (of the reachable stops)
  std::uint64_t bytes = 0;    // what the budget counts: snapshots, memory versions, exit log
  std::uint64_t exit_log_bytes = 0;
  std::uint64_t exits_logged = 0;
  std::uint64_t budget_bytes = 0;
  bool in_past = false;
  std::optional<std::string> refusal;
};

class History {
 public:
  // `log`: the machine's exit log when it has one already (drvm replay, --recording); else
  // History makes its own.
  History(Machine& machine, debug::DebugController& controller, const HistoryOptions& options,
          ExitLog* log = nullptr);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // Why reverse execution does not work now (nullopt: it does).
  std::optional<std::string> refusal() const;
  // gdb stands at a position before the present (the machine shows that past state).
  bool in_past() const { return in_past_.load(); }
  // A move is running: vCPU stops and faults belong to it (GdbTarget routes them here).
  bool moving() const { return moving_.load(); }
  KvmReplayMachine& machine() { return *replay_; }
  // Read-only counts (the caller's thread, while no move runs).
  HistoryStats stats() const;

  // --- The live run (the caller's thread, every vCPU paused) ---
  // gdb was told of a stop (the first one starts the recording).
  void live_stopped(const LiveStop& stop);
  // gdb changed registers or memory at the present: a new position from here on.
  void live_modified();
  // Back to the present (gdb detaches or leaves while in the past).
  void return_to_present();

  // --- Moves (run on the worker; `done` is called there, with the vCPU parked) ---
  void move(bool backward, bool step, std::vector<Trigger> watched,
            std::function<void(const MoveResult&)> done);
  // gdb's Ctrl-C during a move; false when no move runs (the live run takes it).
  bool interrupt();

 private:
  void add_stop(Stop stop, bool snapshot);
  void enforce_budget();
  void refuse(std::string why);
  MoveResult run_move(bool backward, bool step, const std::vector<Trigger>& watched);
  bool inside_string_instruction(std::uint64_t pc, const debug::AccessInfo& access);
  void worker_main();

  Machine& machine_;
  debug::DebugController& controller_;
  HistoryOptions options_;
  std::unique_ptr<ExitLog> own_log_;
  ExitLog& log_;
  std::unique_ptr<KvmReplayMachine> replay_;
  Navigator navigator_;

  mutable std::mutex mutex_;  // refused_, jobs_, quit_
  std::optional<std::string> refused_;
  std::atomic<bool> in_past_{false};
  std::atomic<bool> moving_{false};
  Position position_;  // where gdb stands (the worker's, or the caller's while no move runs)
  std::size_t last_snapshot_stop_ = 0;
  std::chrono::steady_clock::time_point last_snapshot_time_;

  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  bool quit_ = false;
  std::thread worker_;
};

}  // namespace drvm::vmm::replay
