#pragma once
// A scripted, in-memory DebugTarget for the stub's tests: two vCPUs with register files, a
// memory window with an unmapped hole, a breakpoint table, and stop events it reports, forwards
// and (when enabled) backwards.

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gdbstub/debug_target.hpp"

namespace drvm::gdbstub::testing {

class FakeTarget : public DebugTarget {
 public:
  static constexpr std::uint64_t kMemoryBase = 0x10000;
  static constexpr std::uint64_t kMemorySize = 0x4000;
  static constexpr std::uint64_t kHoleBase = 0x12000;  // one unmapped page inside the window
  static constexpr std::uint64_t kHoleSize = 0x1000;
  static constexpr std::uint64_t kRefusedAddress = 0xdead0;  // insert_breakpoint fails here

  // What the next resume() that continues a thread reports, and the guest write it simulates.
  struct ScriptedStop {
    StopEvent event;
    std::uint64_t write_address = 0;
    std::vector<std::uint8_t> write_bytes{};
    std::uint64_t advance_rip = 0;
  };

  // What the next reverse_resume() does: refuse with `refusal` when set; otherwise move the
  // stopped thread's rip to `rip` (when set) and report `event`.
  struct ScriptedReverse {
    StopEvent event;
    std::optional<std::uint64_t> rip{};
    std::optional<Status> refusal{};
  };

  struct ReverseCall {
    ThreadId thread = 0;
    ThreadAction action = ThreadAction::kContinue;
    friend bool operator==(const ReverseCall&, const ReverseCall&) = default;
  };

  explicit FakeTarget(int threads = 2);
  ~FakeTarget() override;

  // Stop handlers run on a separate thread (as a vCPU thread would call them).
  void set_deliver_from_thread(bool value);
  void script_stop(ScriptedStop stop);
  // The guest's state when gdb attaches: held (kTrap) or running (kInterrupted on attach).
  void set_attach_event(StopEvent event);
  // Off (the default): reverse_resume() refuses as DebugTarget's default does. On: a scripted
  // reverse stop, else bs moves rip back by one and bc runs until interrupt().
  void set_can_reverse(bool value);
  void script_reverse(ScriptedReverse reverse);

  int thread_count() const override { return static_cast<int>(registers_.size()); }
  void attach(StopHandler on_stop) override;
  void resume(const ResumeRequest& request, StopHandler on_stop) override;
  void interrupt() override;
  bool can_reverse() const override;
  Status reverse_resume(ThreadId thread, ThreadAction action, StopHandler on_stop) override;
  Status read_registers(ThreadId thread, Registers& out) override;
  Status write_registers(ThreadId thread, const Registers& in) override;
  std::size_t read_memory(ThreadId thread, std::uint64_t address,
                          std::span<std::uint8_t> out) override;
  std::size_t write_memory(ThreadId thread, std::uint64_t address,
                           std::span<const std::uint8_t> in) override;
  Status insert_breakpoint(const Breakpoint& breakpoint) override;
  Status remove_breakpoint(const Breakpoint& breakpoint) override;
  std::string monitor_command(std::string_view command) override;
  void detach() override;
  void disconnect(bool client_sent_packets) override;
  void kill() override;

  // Inspection from the test thread (all locked).
  Registers registers(ThreadId thread) const;
  void set_registers(ThreadId thread, const Registers& registers);
  std::uint8_t memory_byte(std::uint64_t address) const;
  std::vector<Breakpoint> breakpoints() const;
  std::vector<ResumeRequest> resumes() const;
  // Every reverse_resume() call, refused ones included.
  std::vector<ReverseCall> reverse_resumes() const;
  int attach_count() const;
  int detach_count() const;
  int disconnect_count() const;
  // client_sent_packets of the latest disconnect().
  bool last_disconnect_had_packets() const;
  int interrupt_count() const;
  int kill_count() const;
  bool running() const;
  // The handler of the latest attach()/resume(), kept even after it was used or dropped.
  StopHandler last_handler() const;

 private:
  bool mapped(std::uint64_t address) const;
  void deliver(StopHandler handler, StopEvent event);

  mutable std::mutex mutex_;
  std::vector<Registers> registers_;
  std::vector<std::uint8_t> memory_;
  std::vector<Breakpoint> breakpoints_;
  std::vector<ResumeRequest> resumes_;
  std::deque<ScriptedStop> script_;
  std::deque<ScriptedReverse> reverse_script_;
  std::vector<ReverseCall> reverse_calls_;
  bool can_reverse_ = false;
  StopEvent attach_event_;
  StopHandler pending_;
  StopHandler last_handler_;
  bool deliver_from_thread_ = false;
  std::vector<std::thread> deliverers_;
  int attaches_ = 0;
  int detaches_ = 0;
  int disconnects_ = 0;
  bool last_disconnect_had_packets_ = false;
  int interrupts_ = 0;
  int kills_ = 0;
};

}  // namespace drvm::gdbstub::testing
