// ExitLog: the guest's own exits to userspace (port I/O, MMIO to a device), recorded while the
// guest runs live and fed back while it replays its past. These are the only inputs a
// single-vCPU guest without asynchronous interrupts gets from outside (a read of COM1's receive
// register, of a device's status), so replaying them makes the run repeat exactly. While
// replaying, the devices never see an exit: serial output is not printed twice, the exit port
// does not end the run. Each replayed exit is compared with the recorded one (port or address,
// size, direction, written data, RIP): a difference means the replay left the recorded path.
//
// A log loaded from a recording (drvm replay) drives the live run the same way: reads come from
// it, writes are checked and reach the devices (the serial output appears again).
//
// The count of logged exits so far is a coarse clock of the run ("landmarks"). MMIO to guest RAM
// (the debug engines' protected pages) is not a guest exit and not logged.
//
// Threading: on_exit/before_run on the vCPU's thread; the rest while the vCPU is paused, except
// landmarks(), which any thread may read.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "vmm/machine.hpp"

namespace drvm::vmm::replay {

class ExitLog final : public ExitInterceptor {
 public:
  // Joins `machine`'s interceptor chain first (before the debug engines). Only vCPU 0 is logged:
  // replaying is for single-vCPU machines.
  explicit ExitLog(Machine& machine);
  ~ExitLog() override;
  ExitLog(const ExitLog&) = delete;
  ExitLog& operator=(const ExitLog&) = delete;

  // Called on the vCPU thread when a quiet replay cannot go on (it left the recorded path, or used
  // up the log: end_of_log); the vCPU parks.
  void set_problem_handler(std::function<void(bool end_of_log, const std::string& why)> handler);
  // Called on the vCPU thread when the live run leaves a log loaded from a recording (it did not
  // repeat the recorded run); the vCPU parks.
  void set_live_problem_handler(std::function<void(const std::string& why)> handler);

  // A quiet replay from landmark `position` on (the vCPU is paused): every exit comes from the log,
  // the devices see none.
  void replay_from(std::uint64_t position);
  // Back to the live run at the current position: while the log has exits beyond it (a recording
  // being replayed, or the present after a quiet replay), reads come from the log and writes are
  // checked against it and reach the devices; after them, exits are recorded.
  void record();
  bool replaying() const { return replaying_; }

  // Recording stops (the log is given up) once it holds more than `bytes`; 0: no limit.
  void set_limit(std::size_t bytes) { limit_ = bytes; }
  // The limit was reached: the log no longer describes the run.
  bool exhausted() const { return exhausted_.load(std::memory_order_acquire); }
  // Records nothing from now on (reverse execution was refused; nothing will replay the log).
  void stop_recording() { exhausted_.store(true, std::memory_order_release); }

  std::uint64_t landmarks() const { return position_.load(std::memory_order_acquire); }
  std::uint64_t recorded() const { return records_.size(); }
  std::size_t bytes() const;

  // The log as a byte stream (drvm run --recording), and back (drvm replay). read() throws
  // std::runtime_error for a stream that is not one.
  void write(std::ostream& out) const;
  void read(std::istream& in);

  std::optional<ExitAction> on_exit(VcpuRunner& vcpu, const VmExit& exit) override;
  void before_run(VcpuRunner& vcpu) override;

 private:
  struct Record {
    std::uint64_t address = 0;  // port or guest-physical address
    std::uint64_t rip = 0;
    std::uint64_t data_offset = 0;  // into data_
    std::uint32_t count = 1;        // string port I/O: elements
    std::uint8_t size = 0;
    bool mmio = false;
    bool write = false;
  };
  // Checks `got` against the next record and feeds a read from it; the problem, if any.
  std::optional<std::string> follow(const Record& got, std::span<std::uint8_t> bytes);

  Machine& machine_;
  // KVM_CAP_SYNC_REGS: KVM copies the registers into kvm_run at every exit, so the RIP of a
  // logged exit needs no KVM_GET_REGS.
  bool sync_regs_ = false;
  std::vector<Record> records_;
  std::vector<std::uint8_t> data_;
  std::atomic<std::uint64_t> position_{0};
  bool replaying_ = false;
  std::size_t limit_ = 0;
  std::atomic<bool> exhausted_{false};
  // A read whose value the device fills in before the next entry (recording).
  std::optional<std::size_t> pending_read_;
  std::span<std::uint8_t> pending_bytes_;
  std::function<void(bool, const std::string&)> on_problem_;
  std::function<void(const std::string&)> on_live_problem_;
};

}  // namespace drvm::vmm::replay
