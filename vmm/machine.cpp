#include "vmm/machine.hpp"

#include <pthread.h>
#include <signal.h>

#include <fmt/format.h>
#include <cstring>

#include "vmm/boot.hpp"
#include "vmm/cpu_report.hpp"
#include "vmm/software_interrupts.hpp"

namespace drvm::vmm {

namespace {

constexpr std::uint16_t kExitPortBase = 0xf4;  // QEMU isa-debug-exit,iobase=0xf4,iosize=0x04
constexpr std::uint16_t kExitPortSize = 4;
constexpr auto kSerialFlushInterval = std::chrono::milliseconds(50);
// Longer timeouts (e.g. --timeout 1e300) do not fit steady_clock and mean no deadline.
constexpr std::chrono::duration<double> kLongestTimeout(1e9);

// The signal that kicks a vCPU thread out of KVM_RUN. Its handler does nothing: the point is the
// EINTR from KVM_RUN. Installed without SA_RESTART.
int kick_signal() {
  return SIGRTMIN;
}

void install_kick_handler() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(kick_signal(), &action, nullptr);
    return true;
  }();
  (void)installed;
}

std::uint8_t& immediate_exit(Vcpu& vcpu) {
  return vcpu.run_area().immediate_exit;
}

const char* const kExitNames[] = {
    "KVM_EXIT_UNKNOWN",
    "KVM_EXIT_EXCEPTION",
    "KVM_EXIT_IO",
    "KVM_EXIT_HYPERCALL",
    "KVM_EXIT_DEBUG",
    "KVM_EXIT_HLT",
    "KVM_EXIT_MMIO",
    "KVM_EXIT_IRQ_WINDOW_OPEN",
    "KVM_EXIT_SHUTDOWN",
    "KVM_EXIT_FAIL_ENTRY",
    "KVM_EXIT_INTR",
    "KVM_EXIT_SET_TPR",
    "KVM_EXIT_TPR_ACCESS",
    "KVM_EXIT_S390_SIEIC",
    "KVM_EXIT_S390_RESET",
    "KVM_EXIT_DCR",
    "KVM_EXIT_NMI",
    "KVM_EXIT_INTERNAL_ERROR",
    "KVM_EXIT_OSI",
    "KVM_EXIT_PAPR_HCALL",
    "KVM_EXIT_S390_UCONTROL",
    "KVM_EXIT_WATCHDOG",
    "KVM_EXIT_S390_TSCH",
    "KVM_EXIT_EPR",
    "KVM_EXIT_SYSTEM_EVENT",
    "KVM_EXIT_S390_STSI",
    "KVM_EXIT_IOAPIC_EOI",
    "KVM_EXIT_HYPERV",
    "KVM_EXIT_ARM_NISV",
    "KVM_EXIT_X86_RDMSR",
    "KVM_EXIT_X86_WRMSR",
    "KVM_EXIT_DIRTY_RING_FULL",
    "KVM_EXIT_AP_RESET_HOLD",
    "KVM_EXIT_X86_BUS_LOCK",
    "KVM_EXIT_XEN",
    "KVM_EXIT_RISCV_SBI",
    "KVM_EXIT_RISCV_CSR",
    "KVM_EXIT_NOTIFY",
    "KVM_EXIT_LOONGARCH_IOCSR",
    "KVM_EXIT_MEMORY_FAULT",
};

std::string internal_error_name(std::uint32_t suberror) {
  switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION:
      return "instruction emulation failed";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
      return "simultaneous exceptions";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
      return "exit during event delivery";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
      return "unexpected hardware exit reason";
    default:
      return "unknown suberror";
  }
}

}  // namespace

std::string exit_reason_name(std::uint32_t reason) {
  if (reason < std::size(kExitNames)) return kExitNames[reason];
  return fmt::format("unknown exit reason {}", reason);
}

// ---------------------------------------------------------------------------------------------
// VcpuRunner

VcpuRunner::VcpuRunner(Machine& machine, unsigned index)
    : machine_(machine), vcpu_(machine.vm(), index) {}

VcpuRunner::~VcpuRunner() {
  join();
}

void VcpuRunner::start() {
  install_kick_handler();
  thread_running_.store(true);
  thread_ = std::thread([this] { thread_main(); });
}

void VcpuRunner::join() {
  if (thread_.joinable()) thread_.join();
}

void VcpuRunner::kick() {
  // Order matters: the caller has already published its request (stop or pause flag); setting
  // immediate_exit after it guarantees the thread either sees the flag or returns from KVM_RUN.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::atomic_ref<std::uint8_t>(immediate_exit(vcpu_)).store(1, std::memory_order_seq_cst);
  if (thread_running_.load() && thread_.joinable()) {
    pthread_kill(thread_.native_handle(), kick_signal());
  }
}

void VcpuRunner::pause() {
  pause_requested_.store(true, std::memory_order_seq_cst);
  kick();
  std::unique_lock lock(pause_mutex_);
  pause_changed_.wait(lock, [this] { return parked_ || !thread_running_.load(); });
}

void VcpuRunner::resume() {
  {
    std::lock_guard lock(pause_mutex_);
    pause_requested_.store(false, std::memory_order_seq_cst);
  }
  pause_changed_.notify_all();
}

bool VcpuRunner::paused() const {
  std::lock_guard lock(pause_mutex_);
  return parked_;
}

void VcpuRunner::park() {
  std::unique_lock lock(pause_mutex_);
  parked_ = true;
  pause_changed_.notify_all();
  pause_changed_.wait(lock, [this] { return !pause_requested_.load() || machine_.finishing(); });
  parked_ = false;
  pause_changed_.notify_all();
}

void VcpuRunner::thread_main() {
  // Block nothing: the kick signal must reach this thread.
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, kick_signal());
  pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);

  kvm_run& run = vcpu_.run_area();
  std::atomic_ref<std::uint8_t> immediate(run.immediate_exit);
  try {
    while (true) {
      // Clear the kick before looking at the flags (see kick()).
      immediate.store(0, std::memory_order_seq_cst);
      if (machine_.finishing()) break;
      if (pause_requested_.load(std::memory_order_seq_cst)) {
        park();
        continue;
      }
      if (auto* interceptor = machine_.interceptor()) interceptor->before_run(*this);
      if (vcpu_.run() != 0) {  // interrupted (kick or immediate_exit): re-check the flags
        auto* interceptor = machine_.interceptor();
        if (interceptor && interceptor->on_interrupted(*this) == ExitAction::kPause) {
          pause_requested_.store(true, std::memory_order_seq_cst);
        }
        continue;
      }
      counters_.by_reason[std::min<std::size_t>(run.exit_reason, ExitCounters::kBuckets - 1)]++;
      counters_.total++;
      if (machine_.dispatch_exit(*this) == ExitAction::kPause) {
        pause_requested_.store(true, std::memory_order_seq_cst);
      }
    }
  } catch (const std::exception& error) {
    RunOutcome outcome;
    outcome.kind = RunOutcome::Kind::kInternalError;
    outcome.status = status::kInternal;
    outcome.vcpu = index();
    outcome.report = fmt::format("drvm: vCPU {}: {}\n", index(), error.what());
    machine_.finish(std::move(outcome));
  }
  {
    std::lock_guard lock(pause_mutex_);
    thread_running_.store(false);
  }
  pause_changed_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Machine

Machine::Machine(const System& system, MachineConfig config)
    : system_(system),
      config_(std::move(config)),
      vm_(system),
      memory_(config_.memory_size),
      memory_map_(memory_, vm_),
      serial_out_(config_.serial_out_fd, config_.log),
      com1_(serial_out_, config_.serial_in_fd) {
  const auto cpuid = system.supported_cpuid();
  for (unsigned i = 0; i < config_.vcpu_count; ++i) {
    auto runner = std::make_unique<VcpuRunner>(*this, i);
    auto entries = cpuid;
    for (auto& entry : entries) {
      // Each vCPU reports its own APIC ID (leaf 1 EBX[31:24], leaf 0xb EDX).
      if (entry.function == 1) entry.ebx = (entry.ebx & 0x00ffffff) | (i << 24);
      if (entry.function == 0xb) entry.edx = i;
    }
    runner->vcpu().set_cpuid(entries);
    vcpus_.push_back(std::move(runner));
    started_.push_back(false);
  }
}

Machine::~Machine() {
  if (!finishing()) {
    RunOutcome outcome;
    outcome.kind = RunOutcome::Kind::kKilled;
    outcome.status = status::kKilled;
    finish(std::move(outcome));
  }
  for (auto& runner : vcpus_) runner->join();
  serial_out_.flush();
}

void Machine::boot(const BootImage& image) {
  load_image(image, memory_);
  write_boot_structures(memory_, image.mode, config_.cmdline);
  Vcpu& bsp = vcpus_.front()->vcpu();
  const InitialCpuState state = initial_cpu_state(image.mode, image.entry, bsp.sregs());
  bsp.set_sregs(state.sregs);
  bsp.set_regs(state.regs);
  started_.front() = true;
}

RunOutcome Machine::run(std::optional<std::chrono::duration<double>> timeout) {
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < vcpus_.size(); ++i) {
    if (started_[i]) vcpus_[i]->start();
  }
  const bool has_deadline = timeout.has_value() && *timeout < kLongestTimeout;
  const auto deadline =
      has_deadline
          ? start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(*timeout)
          : std::chrono::steady_clock::time_point::max();
  {
    std::unique_lock lock(finish_mutex_);
    while (!outcome_) {
      auto wake = std::chrono::steady_clock::now() + kSerialFlushInterval;
      if (has_deadline && deadline < wake) wake = deadline;
      finished_cv_.wait_until(lock, wake, [this] { return outcome_.has_value(); });
      if (outcome_) break;
      // A guest that printed a prompt and then computes for a while: show the prompt.
      lock.unlock();
      serial_out_.flush();
      lock.lock();
      if (has_deadline && std::chrono::steady_clock::now() >= deadline && !outcome_) {
        lock.unlock();
        RunOutcome outcome;
        outcome.kind = RunOutcome::Kind::kTimeout;
        outcome.status = status::kTimeout;
        finish(std::move(outcome));
        lock.lock();
      }
    }
  }
  for (auto& runner : vcpus_) runner->join();
  serial_out_.flush();
  RunOutcome outcome = *outcome_;
  if (outcome.kind == RunOutcome::Kind::kTimeout) {
    std::string where;
    for (std::size_t i = 0; i < vcpus_.size(); ++i) {
      if (!started_[i]) continue;
      const kvm_regs regs = vcpus_[i]->vcpu().regs();
      where += fmt::format("{}vCPU {} at RIP {:#x}", where.empty() ? "" : ", ", i, regs.rip);
    }
    outcome.report = fmt::format(
        "drvm: timeout: the guest was still running after {} s ({}); raise --timeout or check "
        "the guest for a hang\n",
        timeout ? timeout->count() : 0.0, where);
  }
  return outcome;
}

void Machine::finish(RunOutcome outcome) {
  {
    std::lock_guard lock(finish_mutex_);
    if (outcome_) return;
    outcome_ = std::move(outcome);
    finishing_.store(true, std::memory_order_seq_cst);
  }
  finished_cv_.notify_all();
  for (auto& runner : vcpus_) {
    runner->kick();
    runner->resume();  // a parked vCPU wakes up, sees the run is over and exits
  }
}

void Machine::pause_all() {
  for (auto& runner : vcpus_) runner->pause();
}

void Machine::resume_all() {
  for (auto& runner : vcpus_) runner->resume();
}

VirtualAccess Machine::read_virtual(std::size_t index, std::uint64_t address,
                                    std::span<std::byte> out) {
  const PagingState paging = PagingState::from(vcpu(index).vcpu().sregs());
  return vmm::read_virtual(memory_, paging, address, out);
}

VirtualAccess Machine::write_virtual(std::size_t index, std::uint64_t address,
                                     std::span<const std::byte> in) {
  const PagingState paging = PagingState::from(vcpu(index).vcpu().sregs());
  return vmm::write_virtual(memory_, paging, address, in);
}

ExitAction Machine::dispatch_exit(VcpuRunner& vcpu) {
  kvm_run& run = vcpu.vcpu().run_area();
  if (interceptor_ != nullptr) {
    if (const auto action = interceptor_->on_exit(vcpu, run)) return *action;
  }
  switch (run.exit_reason) {
    case KVM_EXIT_IO:
      handle_io(vcpu, run);
      return ExitAction::kResume;
    case KVM_EXIT_MMIO:
      handle_mmio(vcpu, run);
      return ExitAction::kResume;
    default:
      break;
  }
  // Anything else ends the run except a stray interruption: flush first so the guest's last
  // words precede drvm's report.
  if (run.exit_reason != KVM_EXIT_INTR) serial_out_.flush();
  return default_exit(vcpu, run);
}

void Machine::handle_io(VcpuRunner& vcpu, kvm_run& run) {
  auto* data = reinterpret_cast<std::uint8_t*>(&run) + run.io.data_offset;
  const unsigned size = run.io.size;
  // String instructions (REP INS/OUTS) arrive as `count` consecutive elements.
  for (std::uint32_t i = 0; i < run.io.count; ++i, data += size) {
    if (run.io.direction == KVM_EXIT_IO_OUT) {
      std::uint32_t value = 0;
      std::memcpy(&value, data, size);
      port_write(vcpu, run.io.port, size, value);
    } else {
      const std::uint64_t value = port_read(run.io.port, size);
      std::memcpy(data, &value, size);
    }
  }
}

std::uint64_t Machine::port_read(std::uint16_t port, unsigned size) {
  if (port >= Uart16550::kCom1Base && port < Uart16550::kCom1Base + Uart16550::kRegisterCount) {
    // Wider reads see the register in the low byte; the bus floats high above it.
    const std::uint64_t high = size > 1 ? ~std::uint64_t{0xff} : 0;
    std::lock_guard lock(com1_mutex_);
    return com1_.read(port - Uart16550::kCom1Base) | high;
  }
  const std::uint64_t all_ones =
      size >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * size)) - 1;
  if (config_.trace_io) {
    fmt::print(config_.log, "drvm: io: in  port={:#06x} size={} value={:#x}\n", port, size,
               all_ones);
  }
  return all_ones;
}

void Machine::port_write(VcpuRunner& vcpu, std::uint16_t port, unsigned size, std::uint32_t value) {
  if (port >= Uart16550::kCom1Base && port < Uart16550::kCom1Base + Uart16550::kRegisterCount) {
    std::lock_guard lock(com1_mutex_);
    com1_.write(port - Uart16550::kCom1Base, static_cast<std::uint8_t>(value));
    return;
  }
  if (port >= kExitPortBase && port < kExitPortBase + kExitPortSize) {
    serial_out_.flush();
    RunOutcome outcome;
    outcome.kind = RunOutcome::Kind::kExitPort;
    outcome.exit_value = value;
    outcome.status = status::exit_port(value);
    outcome.vcpu = vcpu.index();
    finish(std::move(outcome));
    return;
  }
  if (config_.trace_io) {
    fmt::print(config_.log, "drvm: io: out port={:#06x} size={} value={:#x}\n", port, size, value);
  }
}

void Machine::handle_mmio(VcpuRunner&, kvm_run& run) {
  // Nothing is mapped as MMIO yet: reads see all ones, writes vanish.
  const unsigned length = std::min<unsigned>(run.mmio.len, sizeof run.mmio.data);
  std::uint64_t value = 0;
  if (run.mmio.is_write) {
    std::memcpy(&value, run.mmio.data, length);
  } else {
    std::memset(run.mmio.data, 0xff, length);
    std::memcpy(&value, run.mmio.data, length);
  }
  if (config_.trace_io) {
    fmt::print(config_.log, "drvm: mmio: {} addr={:#x} size={} value={:#x}\n",
               run.mmio.is_write ? "write" : "read ", run.mmio.phys_addr, length, value);
  }
}

ExitAction Machine::end_with_fault(VcpuRunner& vcpu, RunOutcome outcome) {
  if (fault_hold_ && fault_hold_(vcpu, outcome)) return ExitAction::kPause;
  finish(std::move(outcome));
  return ExitAction::kResume;
}

ExitAction Machine::fail(VcpuRunner& vcpu, RunOutcome::Kind kind, int status_code,
                         const std::string& headline,
                         std::span<const std::uint8_t> instruction_bytes) {
  RunOutcome outcome;
  outcome.kind = kind;
  outcome.status = status_code;
  outcome.vcpu = vcpu.index();
  outcome.report = fmt::format("drvm: {}\n", headline);
  try {
    const CpuSnapshot cpu = capture_cpu_state(vcpu.vcpu());
    outcome.report += fmt::format("drvm: vCPU {} registers:\n", vcpu.index());
    outcome.report += format_cpu_report(cpu, memory_, instruction_bytes);
  } catch (const KvmError& error) {
    outcome.report += fmt::format("drvm: (registers unavailable: {})\n", error.what());
  }
  return end_with_fault(vcpu, std::move(outcome));
}

ExitAction Machine::default_exit(VcpuRunner& vcpu, kvm_run& run) {
  const unsigned index = vcpu.index();
  switch (run.exit_reason) {
    case KVM_EXIT_INTR:
      return ExitAction::kResume;  // a signal arrived: the loop re-checks its flags
    case KVM_EXIT_HLT: {
      // No interrupt controller and no timer yet: nothing can wake a halted vCPU.
      const kvm_regs regs = vcpu.vcpu().regs();
      const bool interrupts = (regs.rflags & (1u << 9)) != 0;
      RunOutcome outcome;
      outcome.kind = RunOutcome::Kind::kHalted;
      outcome.status = status::kHalted;
      outcome.vcpu = index;
      outcome.report = fmt::format(
          "drvm: guest halted: vCPU {} executed HLT at RIP {:#x} with interrupts {}\n", index,
          regs.rip - 1,
          interrupts ? "enabled, but drvm has no interrupt source to wake it" : "disabled");
      return end_with_fault(vcpu, std::move(outcome));
    }
    case KVM_EXIT_SHUTDOWN:
      return fail(
          vcpu, RunOutcome::Kind::kTripleFault, status::kTripleFault,
          fmt::format("triple fault: vCPU {} shut down (KVM_EXIT_SHUTDOWN); the guest hit an "
                      "exception it could not deliver",
                      index));
    case KVM_EXIT_INTERNAL_ERROR: {
      const auto suberror = run.internal.suberror;
      if (suberror == KVM_INTERNAL_ERROR_EMULATION &&
          deliver_software_interrupt(vcpu.vcpu(), memory_)) {
        return ExitAction::kResume;
      }
      std::span<const std::uint8_t> bytes;
      std::string note;
      if (suberror == KVM_INTERNAL_ERROR_EMULATION) {
        if (run.emulation_failure.ndata >= 3 &&
            (run.emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
          bytes = {run.emulation_failure.insn_bytes,
                   std::min<std::size_t>(run.emulation_failure.insn_size, 15)};
        }
        note =
            " (on KVM's instruction emulator this is what an instruction fetch from unmapped "
            "memory produces)";
      }
      std::string data;
      for (std::uint32_t i = 0; i < std::min<std::uint32_t>(run.internal.ndata, 16); ++i) {
        data += fmt::format(" {:#x}", run.internal.data[i]);
      }
      return fail(
          vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
          fmt::format("KVM internal error on vCPU {}: suberror {} ({}){}{}", index, suberror,
                      internal_error_name(suberror), data.empty() ? "" : "; data:" + data, note),
          bytes);
    }
    case KVM_EXIT_FAIL_ENTRY:
      return fail(
          vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
          fmt::format("KVM could not enter vCPU {} (KVM_EXIT_FAIL_ENTRY): hardware reason {:#x} "
                      "on host CPU {}",
                      index, run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu));
    case KVM_EXIT_UNKNOWN:
      return fail(vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
                  fmt::format("unknown exit on vCPU {} (KVM_EXIT_UNKNOWN): hardware reason {:#x}",
                              index, run.hw.hardware_exit_reason));
    case KVM_EXIT_EXCEPTION:
      return fail(vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
                  fmt::format("unhandled exception exit on vCPU {}: vector {} error code {:#x}",
                              index, run.ex.exception, run.ex.error_code));
    case KVM_EXIT_DEBUG:
      return fail(vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
                  fmt::format("unexpected debug exit on vCPU {} (no debugger attached): pc {:#x} "
                              "DR6 {:#x} DR7 {:#x} exception {}",
                              index, run.debug.arch.pc, run.debug.arch.dr6, run.debug.arch.dr7,
                              run.debug.arch.exception));
    case KVM_EXIT_SYSTEM_EVENT:
      return fail(
          vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
          fmt::format("unhandled system event on vCPU {}: type {}", index, run.system_event.type));
    default:
      return fail(vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
                  fmt::format("unhandled exit on vCPU {}: {} ({})", index,
                              exit_reason_name(run.exit_reason), run.exit_reason));
  }
}

}  // namespace drvm::vmm
