// A virtual machine ready to run: the KVM VM with its in-kernel interrupt controllers and PIT,
// guest memory and its memslot map, the device buses with their devices (COM1, the exit port, the
// quiet PC ports), and one VcpuRunner (a thread) per vCPU.
//
// Exit dispatch: each vCPU thread decodes every KVM_RUN exit once (VmExit) and hands it to
// Machine::dispatch_exit(). The interceptor chain sees it first, in order (the counting session
// before the debug controller: debug engines claim KVM_EXIT_DEBUG, MMIO on protected pages,
// emulation failures at planted INT3s); when every interceptor declines, port I/O and MMIO go to
// the device that registered the address on the IoBus, and everything else to the default
// handling, which ends the run with a report for anything unexpected.
//
// HLT: with the in-kernel local APIC a vCPU waits in HLT inside KVM_RUN. When no vCPU has made an
// exit for a while, the run loop starts a halt round: it kicks every vCPU, and each one, on its
// own thread, judges whether it is stopped for good: in HLT with nothing left that can wake it
// (irq::check_wake_sources, which counts an interrupt already pending in its local APIC), or
// still waiting for its startup IPI. A vCPU that is stopped waits outside KVM_RUN until every
// vCPU has judged itself; then all judge again (nobody runs, so nobody can send an IPI in
// between) and, when every vCPU is still stopped, the run ends as "halted". Anything else (a
// running vCPU, a wake source, a pause, 200 ms without the others) ends the round.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vmm/boot/boot_modules.hpp"
#include "vmm/boot/image.hpp"
#include "vmm/devices/interrupt_controllers.hpp"
#include "vmm/devices/io_bus.hpp"
#include "vmm/devices/platform_ports.hpp"
#include "vmm/devices/serial.hpp"
#include "vmm/kvm/guest_memory.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/memory_map.hpp"
#include "vmm/kvm/vm_exit.hpp"
#include "vmm/run_outcome.hpp"
#include "vmm/x86/paging.hpp"

namespace drvm::vmm {

class Machine;

struct MachineConfig {
  std::uint64_t memory_size = 128ULL << 20;
  std::string cmdline;
  std::vector<BootModule> modules;  // --initrd
  unsigned vcpu_count = 1;
  bool trace_io = false;    // log unhandled port I/O and MMIO on `log`
  int serial_out_fd = 1;    // COM1 transmit
  int serial_in_fd = -1;    // COM1 receive; -1 for none
  std::FILE* log = stderr;  // drvm's own messages (--trace-io lines)
};

// What the run loop does after an interceptor handled an exit.
enum class ExitAction : std::uint8_t {
  kResume,  // enter the guest again
  kPause,   // park this vCPU (outside KVM_RUN) until VcpuRunner::resume()
};

// A link of the machine's interceptor chain (the debug engines, the counting session). Every
// method runs on the vCPU's own thread; the chain calls each link in order.
class ExitInterceptor {
 public:
  virtual ~ExitInterceptor() = default;
  // Before every KVM_RUN (arm debug registers, guest-debug flags, event injection).
  virtual void before_run(class VcpuRunner& /*vcpu*/) {}
  // After every link's before_run(), right before KVM_RUN (unless a link set immediate_exit).
  virtual void entering_guest(class VcpuRunner& /*vcpu*/) {}
  // After every exit. Return an action to claim the exit (later links and the devices do not see
  // it), or nullopt to pass it on. To end the whole run, call Machine::finish() and return kResume.
  virtual std::optional<ExitAction> on_exit(class VcpuRunner& vcpu, const VmExit& exit) = 0;
  // KVM_RUN returned without an exit (EINTR: kvm_run.immediate_exit or a kick). A pending MMIO
  // access has been completed by then, so this is where a trap-like stop after it is taken. Every
  // link is called; the vCPU parks if any returns kPause.
  virtual ExitAction on_interrupted(class VcpuRunner& /*vcpu*/) { return ExitAction::kResume; }
  // KVM_RUN returned EAGAIN: KVM took an INIT and/or a startup IPI for this vCPU and reset it
  // (registers, and on SVM the debug state it had been given), without entering the guest.
  virtual void on_reset(class VcpuRunner& /*vcpu*/) {}
};

// Where a link joins the chain.
enum class ChainPosition : std::uint8_t { kFirst, kLast };

// Per-vCPU exit counters (indexed by KVM_EXIT_*; larger reasons land in the last bucket).
struct ExitCounters {
  static constexpr std::size_t kBuckets = 64;
  std::array<std::uint64_t, kBuckets> by_reason{};
  std::uint64_t total = 0;
};

// One vCPU, its thread, and its per-vCPU state.
class VcpuRunner {
 public:
  VcpuRunner(Machine& machine, unsigned index);
  ~VcpuRunner();
  VcpuRunner(const VcpuRunner&) = delete;
  VcpuRunner& operator=(const VcpuRunner&) = delete;

  unsigned index() const { return vcpu_.index(); }
  Vcpu& vcpu() { return vcpu_; }
  Machine& machine() { return machine_; }
  const ExitCounters& counters() const { return counters_; }

  // Pause from another thread: returns once the vCPU is parked outside KVM_RUN (or the run has
  // ended). While paused, other threads may use vcpu() (registers, debug state). Never call from
  // the vCPU's own thread: return ExitAction::kPause from the interceptor instead.
  void pause();
  void resume();
  bool paused() const;
  // Makes KVM_RUN return promptly (immediate_exit + a signal to the thread).
  void kick();

 private:
  friend class Machine;
  void start();
  void join();
  void thread_main();
  void park();  // waits while a pause is requested
  // From the run loop's thread: whether the vCPU has made no exit since the last call (and is
  // neither paused nor gone), and the kick that makes it join halt round `generation`.
  bool idle_since_last_look();
  void request_halt_check(std::uint64_t generation);

  Machine& machine_;
  Vcpu vcpu_;
  std::thread thread_;
  std::atomic<bool> pause_requested_{false};
  mutable std::mutex pause_mutex_;
  std::condition_variable pause_changed_;
  bool parked_ = false;
  std::atomic<bool> thread_running_{false};
  ExitCounters counters_;
  std::atomic<std::uint64_t> exits_{0};  // counters_.total, readable from other threads
  std::uint64_t exits_seen_ = 0;  // idle_since_last_look()'s last look (run loop thread only)
  std::atomic<std::uint64_t> halt_check_{0};  // the halt round to join (0: none), after the EINTR
  // The last exit was port I/O or device MMIO: KVM completes it (an IN's value, RIP past the
  // instruction) at the next KVM_RUN, which parking must do first.
  bool completion_owed_ = false;
};

class Machine {
 public:
  Machine(const System& system, MachineConfig config);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Loads the image, writes the boot structures and sets the bootstrap vCPU's registers.
  void boot(const BootImage& image);
  // Runs every started vCPU until the run ends; timeout is wall-clock.
  RunOutcome run(std::optional<std::chrono::duration<double>> timeout = std::nullopt);
  // Ends the run (first caller wins) from any thread, including a vCPU thread.
  void finish(RunOutcome outcome);
  bool finishing() const { return finishing_.load(std::memory_order_acquire); }
  // The errno of the first failed write of the guest's serial output (0: none failed).
  int serial_write_error() { return serial_out_.error(); }

  // Change the chain before run() or while every vCPU is paused.
  void add_interceptor(ExitInterceptor& interceptor, ChainPosition position = ChainPosition::kLast);
  void remove_interceptor(ExitInterceptor& interceptor);
  const std::vector<ExitInterceptor*>& interceptors() const { return interceptors_; }
  // Consulted (on the vCPU's thread) before a halt, triple fault or internal error ends the run:
  // returning true keeps the run going with that vCPU parked, its state intact, so that a
  // debugger can inspect it; the hook then owns the outcome (it calls finish() with it later).
  // Install before run().
  using FaultHold = std::function<bool(VcpuRunner& vcpu, const RunOutcome& outcome)>;
  void set_fault_hold(FaultHold hold) { fault_hold_ = std::move(hold); }
  // The device buses: register devices before run().
  IoBus& io_bus() { return io_bus_; }
  // COM1 (snapshots save and restore its state while every vCPU is paused).
  Uart16550& com1() { return com1_; }
  // What could interrupt vCPU `index` if it enabled interrupts (its flags' IF aside): the local
  // APIC timer, the PIT or COM1 routed to it, an interrupt already requested. The vCPU must be
  // paused. Reverse execution refuses a guest that has one (its timing cannot be replayed).
  irq::WakeCheck interrupt_sources(std::size_t index);
  // Drives GSI `gsi` (KVM_IRQ_LINE), from any thread.
  void set_irq(std::uint32_t gsi, bool level) { vm_.irq_line(gsi, level); }

  void pause_all();
  void resume_all();

  const System& system() const { return system_; }
  Vm& vm() { return vm_; }
  GuestMemory& memory() { return memory_; }
  MemoryMap& memory_map() { return memory_map_; }
  const MachineConfig& config() const { return config_; }
  std::size_t vcpu_count() const { return vcpus_.size(); }
  VcpuRunner& vcpu(std::size_t index) { return *vcpus_.at(index); }

  // Guest virtual memory through vCPU `index`'s current paging state.
  VirtualAccess read_virtual(std::size_t index, std::uint64_t address, std::span<std::byte> out);
  VirtualAccess write_virtual(std::size_t index, std::uint64_t address,
                              std::span<const std::byte> in);

  // The dispatch points (called on the vCPU's thread).
  ExitAction dispatch_exit(VcpuRunner& vcpu, const VmExit& exit);
  void handle_io(VcpuRunner& vcpu, const IoAccess& io);
  void handle_mmio(VcpuRunner& vcpu, const MmioAccess& mmio);

 private:
  friend class VcpuRunner;  // check_halted()
  // Whether one vCPU is stopped for good, as judged on its own thread.
  struct StopJudgement {
    bool stopped = false;
    std::string what;                   // "vCPU 0 executed HLT at RIP ... with ...": stopped only
    std::optional<ExitAction> claimed;  // a link claimed the HLT shown to the chain
  };
  void register_devices();
  void exit_port_written(unsigned vcpu, std::uint32_t value);
  // Run loop thread: starts a halt round when every vCPU has been idle since the last look.
  void start_halt_round();
  // On the vCPU's thread after a halt-round kick: takes part in round `generation` (see the top
  // of this file); the vCPU whose judgement completes a round of stopped vCPUs ends the run.
  ExitAction check_halted(VcpuRunner& vcpu, std::uint64_t generation);
  // with_chain: show the chain a KVM_EXIT_HLT for a vCPU in HLT (the debug engines' safety net).
  StopJudgement judge_stop(VcpuRunner& vcpu, bool with_chain);
  ExitAction halted(VcpuRunner& vcpu, const std::string& what);
  void serial_input_loop();
  ExitAction default_exit(VcpuRunner& vcpu, const VmExit& exit);
  ExitAction fail(VcpuRunner& vcpu, RunOutcome::Kind kind, int status, const std::string& headline,
                  std::span<const std::uint8_t> instruction_bytes = {});
  // Ends the run with a fault outcome, unless the fault hold keeps the vCPU for a debugger.
  ExitAction end_with_fault(VcpuRunner& vcpu, RunOutcome outcome);

  const System& system_;
  MachineConfig config_;
  Vm vm_;
  GuestMemory memory_;
  MemoryMap memory_map_;
  SerialOutput serial_out_;
  Uart16550 com1_;
  ExitPort exit_port_;
  QuietPorts post_port_;
  QuietPorts fw_cfg_;
  QuietPorts fw_cfg_dma_;
  IoBus io_bus_;
  std::vector<std::unique_ptr<VcpuRunner>> vcpus_;
  std::vector<bool> started_;
  std::vector<ExitInterceptor*> interceptors_;
  FaultHold fault_hold_;
  std::thread serial_input_thread_;

  // The current halt round.
  struct HaltRound {
    std::mutex mutex;
    std::condition_variable changed;
    std::uint64_t generation = 0;  // of the current or last round
    bool active = false;
    unsigned phase = 0;  // 1: each vCPU judges itself; 2: each again, all outside KVM_RUN
    unsigned reports = 0;
    std::vector<std::string> stopped;  // phase 2: each vCPU's StopJudgement::what
  } halt_round_;

  std::mutex finish_mutex_;
  std::condition_variable finished_cv_;
  std::atomic<bool> finishing_{false};
  std::optional<RunOutcome> outcome_;
};

}  // namespace drvm::vmm
