// KvmReplayMachine: the Navigator's ReplayMachine over a real Machine with one vCPU. Triggers
// become host events of owner kReplayOwner in the DebugController (the same engines gdb's
// breakpoints use), runs and steps go through DebugController::resume/single_step, and the exit
// log feeds the guest its recorded inputs. Snapshots of live stops hold the KVM state
// (MachineSnapshotter), a version of guest RAM (MemoryHistory, without drvm's planted INT3s), the
// guest's own debug registers and the controller's reported-breakpoint address.
//
// Threading: the ReplayMachine methods run on one worker thread while vCPU 0 is parked between
// them; on_stop/on_exit_log_problem/on_fault come from the vCPU thread, interrupt() from any.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bpcore/event.hpp"
#include "bpcore/guest_dr_file.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/machine.hpp"
#include "vmm/replay/exit_log.hpp"
#include "vmm/replay/machine_snapshot.hpp"
#include "vmm/replay/memory_history.hpp"
#include "vmm/replay/replay_machine.hpp"

namespace drvm::vmm::replay {

// The registers a position is recognised by (general registers, RIP, RFLAGS, control registers,
// EFER, CS and SS).
Fingerprint fingerprint_of(Vcpu& vcpu);

class KvmReplayMachine final : public ReplayMachine {
 public:
  KvmReplayMachine(Machine& machine, debug::DebugController& controller, ExitLog& log);
  ~KvmReplayMachine() override;
  KvmReplayMachine(const KvmReplayMachine&) = delete;
  KvmReplayMachine& operator=(const KvmReplayMachine&) = delete;

  // Saves the machine as it is now as live stop `stop`'s snapshot (stops increase). Returns the
  // bytes it added.
  std::size_t take_snapshot(std::size_t stop);
  // Frees the snapshots of stops before `stop` (which has one).
  void drop_snapshots_before(std::size_t stop);
  std::size_t bytes() const;

  // Stops and failures of the running replay (vCPU thread).
  void on_stop(const debug::StopInfo& info);
  void on_exit_log_problem(bool end_of_log, const std::string& why);
  void on_fault(const std::string& what);
  // Ends the running replay (and future ones until cleared) as interrupted.
  void interrupt();
  // Clears a Ctrl-C; returns whether there was one.
  bool clear_interrupt();

  // --- ReplayMachine ---
  void restore(std::size_t stop) override;
  void arm(std::span<const Trigger> triggers) override;
  // Removes every trigger (a move is over: the live run must not see them).
  void disarm();
  RunResult run(const std::function<bool(const ReplayHit&)>& on_hit) override;
  RunResult step(const std::function<void(const ReplayHit&)>& on_hit) override;
  std::uint64_t pc() override;
  std::optional<std::uint64_t> reported_here() override;
  void set_reported_here(std::optional<std::uint64_t> address) override;
  std::vector<std::uint64_t> instructions_ending_at(std::uint64_t pc) override;
  Fingerprint fingerprint() override;
  std::uint64_t landmarks() override;
  bool memory_matches(std::size_t stop) override;

 private:
  struct Snapshot {
    MachineSnapshot machine;
    bp::GuestDebugRegs guest_debug{};
    std::optional<std::uint64_t> reported;
    std::uint64_t landmarks = 0;
  };
  RunResult wait();
  bool on_hit(const debug::HostHit& hit);

  Machine& machine_;
  debug::DebugController& controller_;
  ExitLog& log_;
  MachineSnapshotter snapshotter_;
  MemoryHistory memory_;
  std::map<std::size_t, Snapshot> snapshots_;
  std::vector<std::pair<bp::EventId, std::size_t>> armed_;  // event -> trigger

  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<RunResult> outcome_;
  bool interrupted_ = false;
  std::function<bool(const ReplayHit&)> hit_handler_;
};

}  // namespace drvm::vmm::replay
