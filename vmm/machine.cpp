#include "vmm/machine.hpp"

#include <pthread.h>
#include <signal.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <utility>

#include <poll.h>

#include "vmm/boot/acpi_tables.hpp"
#include "vmm/boot/boot.hpp"
#include "vmm/cpu_report.hpp"
#include "vmm/devices/interrupt_controllers.hpp"
#include "vmm/x86/software_interrupts.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm {

namespace {

constexpr auto kSerialFlushInterval = std::chrono::milliseconds(50);
// How often the serial input thread looks again while nobody waits for input by interrupt.
constexpr auto kSerialInputInterval = std::chrono::milliseconds(20);
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

// The VM with its interrupt controllers and PIT, which must exist before any vCPU.
Vm create_platform_vm(const System& system) {
  Vm vm(system);
  irq::create_interrupt_controllers(vm);
  return vm;
}

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

bool VcpuRunner::idle_since_last_look() {
  const std::uint64_t exits = exits_.load(std::memory_order_relaxed);
  const bool progressed = exits != exits_seen_;
  exits_seen_ = exits;
  return !progressed && thread_running_.load() && !pause_requested_.load();
}

void VcpuRunner::request_halt_check(std::uint64_t generation) {
  halt_check_.store(generation, std::memory_order_release);
  kick();
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
        if (!std::exchange(completion_owed_, false)) {
          park();
          continue;
        }
        // KVM finishes a port or device access at the next KVM_RUN: let it (immediate_exit
        // returns before the guest runs on), so a parked vCPU's state is whole.
        immediate.store(1, std::memory_order_seq_cst);
      }
      const auto& chain = machine_.interceptors();
      for (ExitInterceptor* link : chain) link->before_run(*this);
      for (ExitInterceptor* link : chain) link->entering_guest(*this);
      if (const int interrupted = vcpu_.run(); interrupted != 0) {
        completion_owed_ = false;  // KVM_RUN completed any pending access before it returned
        // EINTR: a kick or immediate_exit; re-check the flags. EAGAIN: an AP that waited for its
        // startup IPI has received it (KVM returns once without entering the guest); no exit.
        bool pause = false;
        if (interrupted == EINTR) {
          for (ExitInterceptor* link : chain) {
            pause |= link->on_interrupted(*this) == ExitAction::kPause;
          }
        } else {
          for (ExitInterceptor* link : chain) link->on_reset(*this);
        }
        // A halt-round kick: is the vCPU stopped for good, and every other one too?
        const std::uint64_t round = halt_check_.exchange(0, std::memory_order_acq_rel);
        if (round != 0 && !pause && !pause_requested_.load(std::memory_order_seq_cst)) {
          pause = machine_.check_halted(*this, round) == ExitAction::kPause;
        }
        if (pause) pause_requested_.store(true, std::memory_order_seq_cst);
        continue;
      }
      counters_.by_reason[std::min<std::size_t>(run.exit_reason, ExitCounters::kBuckets - 1)]++;
      counters_.total++;
      exits_.store(counters_.total, std::memory_order_relaxed);
      const VmExit exit = decode_exit(run);
      completion_owed_ = exit.kind == ExitKind::kIo ||
                         (exit.kind == ExitKind::kMmio &&
                          !machine_.memory().contains(exit.mmio.address, exit.mmio.size));
      if (machine_.dispatch_exit(*this, exit) == ExitAction::kPause) {
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
      vm_(create_platform_vm(system)),
      memory_(config_.memory_size),
      memory_map_(memory_, vm_),
      serial_out_(config_.serial_out_fd, config_.log),
      com1_(serial_out_, config_.serial_in_fd,
            [this](bool level) { set_irq(Uart16550::kCom1Irq, level); }),
      exit_port_([this](unsigned vcpu, std::uint32_t value) { exit_port_written(vcpu, value); }),
      post_port_("POST port", QuietPorts::kPostPort, config_.trace_io ? config_.log : nullptr),
      fw_cfg_("fw_cfg, absent", QuietPorts::kFwCfgBase, config_.trace_io ? config_.log : nullptr),
      fw_cfg_dma_("fw_cfg DMA, absent", QuietPorts::kFwCfgDmaBase,
                  config_.trace_io ? config_.log : nullptr) {
  register_devices();
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
    if (i == 0) {
      irq::set_bios_lint(runner->vcpu());
    } else if (runner->vcpu().mp_state().mp_state != KVM_MP_STATE_UNINITIALIZED) {
      // With the in-kernel irqchip KVM already creates every vCPU but the BSP (vCPU 0) in
      // wait-for-INIT/SIPI; make sure, as the MP spec's APs start that way.
      runner->vcpu().set_mp_state(KVM_MP_STATE_UNINITIALIZED);
    }
    vcpus_.push_back(std::move(runner));
    started_.push_back(false);
  }
  // KVM routes IPIs through its APIC map, rebuilt when a local APIC changes; a rebuild that ran
  // while the last vCPU was being created can leave that vCPU out (it is not yet online), and an
  // INIT or SIPI to it then vanishes. Writing every local APIC back once all vCPUs exist rebuilds
  // the map with all of them (QEMU and Firecracker write every vCPU's local APIC too).
  for (std::size_t i = 1; i < vcpus_.size(); ++i) {
    Vcpu& ap = vcpus_[i]->vcpu();
    ap.set_lapic(ap.lapic());
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
  if (serial_input_thread_.joinable()) serial_input_thread_.join();
  serial_out_.flush();
}

void Machine::register_devices() {
  // COM1 first: it is the busiest.
  io_bus_.add_ports(Uart16550::kCom1Base, Uart16550::kRegisterCount, com1_, "COM1");
  io_bus_.add_ports(ExitPort::kBase, ExitPort::kSize, exit_port_, "isa-debug-exit");
  io_bus_.add_ports(QuietPorts::kPostPort, 1, post_port_, "POST port");
  io_bus_.add_ports(QuietPorts::kFwCfgBase, QuietPorts::kFwCfgSize, fw_cfg_, "fw_cfg");
  io_bus_.add_ports(QuietPorts::kFwCfgDmaBase, QuietPorts::kFwCfgDmaSize, fw_cfg_dma_,
                    "fw_cfg DMA");
}

void Machine::add_interceptor(ExitInterceptor& interceptor, ChainPosition position) {
  remove_interceptor(interceptor);
  if (position == ChainPosition::kFirst) {
    interceptors_.insert(interceptors_.begin(), &interceptor);
  } else {
    interceptors_.push_back(&interceptor);
  }
}

void Machine::remove_interceptor(ExitInterceptor& interceptor) {
  std::erase(interceptors_, &interceptor);
}

void Machine::boot(const BootImage& image) {
  load_image(image, memory_);
  write_boot_structures(memory_, image, config_.cmdline, config_.modules);
  write_acpi_tables(memory_, static_cast<unsigned>(vcpus_.size()));
  Vcpu& bsp = vcpus_.front()->vcpu();
  const InitialCpuState state = initial_cpu_state(image.mode, image.entry, bsp.sregs());
  bsp.set_sregs(state.sregs);
  bsp.set_regs(state.regs);
  // Every vCPU gets its thread: the APs' KVM_RUN blocks in KVM until their startup IPI.
  std::fill(started_.begin(), started_.end(), true);
}

RunOutcome Machine::run(std::optional<std::chrono::duration<double>> timeout) {
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < vcpus_.size(); ++i) {
    if (started_[i]) vcpus_[i]->start();
  }
  if (com1_.input_fd() >= 0) serial_input_thread_ = std::thread([this] { serial_input_loop(); });
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
      start_halt_round();
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
  if (serial_input_thread_.joinable()) serial_input_thread_.join();
  serial_out_.flush();
  RunOutcome outcome = *outcome_;
  if (outcome.kind == RunOutcome::Kind::kTimeout) {
    std::string where;
    for (std::size_t i = 0; i < vcpus_.size(); ++i) {
      if (!started_[i]) continue;
      const kvm_regs regs = vcpus_[i]->vcpu().regs();
      const std::uint32_t mp = vcpus_[i]->vcpu().mp_state().mp_state;
      where += fmt::format("{}vCPU {} at RIP {:#x}{}", where.empty() ? "" : ", ", i, regs.rip,
                           mp == KVM_MP_STATE_UNINITIALIZED   ? " (waiting for INIT)"
                           : mp == KVM_MP_STATE_INIT_RECEIVED ? " (waiting for its startup IPI)"
                           : mp == KVM_MP_STATE_HALTED        ? " (in HLT)"
                                                              : "");
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

irq::WakeCheck Machine::interrupt_sources(std::size_t index) {
  Vcpu& cpu = vcpu(index).vcpu();
  kvm_regs regs = cpu.regs();
  regs.rflags |= x86::kRflagsIf;
  return irq::check_wake_sources(vm_, cpu, regs, cpu.sregs(), com1_.can_interrupt(),
                                 Uart16550::kCom1Irq);
}

ExitAction Machine::dispatch_exit(VcpuRunner& vcpu, const VmExit& exit) {
  for (ExitInterceptor* link : interceptors_) {
    if (const auto action = link->on_exit(vcpu, exit)) return *action;
  }
  switch (exit.kind) {
    case ExitKind::kIo:
      handle_io(vcpu, exit.io);
      return ExitAction::kResume;
    case ExitKind::kMmio:
      handle_mmio(vcpu, exit.mmio);
      return ExitAction::kResume;
    case ExitKind::kInterrupted:
      return ExitAction::kResume;  // a signal arrived: the loop re-checks its flags
    default:
      break;
  }
  // Anything else ends the run: flush first so the guest's last words precede drvm's report.
  serial_out_.flush();
  return default_exit(vcpu, exit);
}

void Machine::handle_io(VcpuRunner& vcpu, const IoAccess& io) {
  const auto* range = io_bus_.find_port(io.port);
  std::uint8_t* data = io.data;
  // String instructions (REP INS/OUTS) arrive as `count` consecutive elements.
  for (std::uint32_t i = 0; i < io.count; ++i, data += io.size) {
    if (io.write) {
      std::uint32_t value = 0;
      std::memcpy(&value, data, io.size);
      if (range != nullptr) {
        range->device->port_write(vcpu.index(), static_cast<std::uint16_t>(io.port - range->base),
                                  io.size, value);
      } else if (config_.trace_io) {
        fmt::print(config_.log, "drvm: io: out port={:#06x} size={} value={:#x}\n", io.port,
                   io.size, value);
      }
    } else {
      std::uint32_t value;
      if (range != nullptr) {
        value = range->device->port_read(
            vcpu.index(), static_cast<std::uint16_t>(io.port - range->base), io.size);
      } else {
        value = static_cast<std::uint32_t>(all_ones(io.size));
        if (config_.trace_io) {
          fmt::print(config_.log, "drvm: io: in  port={:#06x} size={} value={:#x}\n", io.port,
                     io.size, value);
        }
      }
      std::memcpy(data, &value, io.size);
    }
  }
}

void Machine::handle_mmio(VcpuRunner& vcpu, const MmioAccess& mmio) {
  std::uint64_t value = 0;
  if (const auto* range = io_bus_.find_mmio(mmio.address)) {
    if (mmio.write) {
      std::memcpy(&value, mmio.data, mmio.size);
      range->device->mmio_write(vcpu.index(), mmio.address - range->base, mmio.size, value);
    } else {
      value = range->device->mmio_read(vcpu.index(), mmio.address - range->base, mmio.size);
      std::memcpy(mmio.data, &value, mmio.size);
    }
    return;
  }
  // Nothing claims it: reads see all ones, writes vanish.
  if (mmio.write) {
    std::memcpy(&value, mmio.data, mmio.size);
  } else {
    value = all_ones(mmio.size);
    std::memcpy(mmio.data, &value, mmio.size);
  }
  if (config_.trace_io) {
    fmt::print(config_.log, "drvm: mmio: {} addr={:#x} size={} value={:#x}\n",
               mmio.write ? "write" : "read ", mmio.address, mmio.size, value);
  }
}

void Machine::exit_port_written(unsigned vcpu, std::uint32_t value) {
  serial_out_.flush();
  RunOutcome outcome;
  outcome.kind = RunOutcome::Kind::kExitPort;
  outcome.exit_value = value;
  outcome.status = status::exit_port(value);
  outcome.vcpu = vcpu;
  finish(std::move(outcome));
}

void Machine::start_halt_round() {
  bool idle = true;
  for (std::size_t i = 0; i < vcpus_.size(); ++i) {
    if (started_[i]) idle = vcpus_[i]->idle_since_last_look() && idle;  // every vCPU's look
  }
  if (!idle) return;
  std::uint64_t generation;
  {
    std::lock_guard lock(halt_round_.mutex);
    if (halt_round_.active) return;
    generation = ++halt_round_.generation;
    halt_round_.active = true;
    halt_round_.phase = 1;
    halt_round_.reports = 0;
    halt_round_.stopped.assign(vcpus_.size(), std::string());
  }
  for (std::size_t i = 0; i < vcpus_.size(); ++i) {
    if (started_[i]) vcpus_[i]->request_halt_check(generation);
  }
}

Machine::StopJudgement Machine::judge_stop(VcpuRunner& vcpu, bool with_chain) {
  StopJudgement judgement;
  Vcpu& cpu = vcpu.vcpu();
  switch (cpu.mp_state().mp_state) {
    case KVM_MP_STATE_UNINITIALIZED:
    case KVM_MP_STATE_INIT_RECEIVED:
      // Only another vCPU's INIT and SIPI start it.
      judgement.stopped = true;
      judgement.what = fmt::format("vCPU {} waits for its startup IPI", vcpu.index());
      return judgement;
    case KVM_MP_STATE_HALTED:
      break;
    default:
      return judgement;  // running
  }
  const kvm_regs regs = cpu.regs();
  const irq::WakeCheck check = irq::check_wake_sources(vm_, cpu, regs, cpu.sregs(),
                                                       com1_.can_interrupt(), Uart16550::kCom1Irq);
  if (check.can_wake) return judgement;
  if (with_chain) {
    // The chain sees this HLT as it saw KVM_EXIT_HLT without an in-kernel APIC (the debug
    // engines' safety net looks at the guest's debug registers there); KVM ignores exit_reason
    // on entry.
    kvm_run& run = cpu.run_area();
    run.exit_reason = KVM_EXIT_HLT;
    const VmExit exit = decode_exit(run);
    for (ExitInterceptor* link : interceptors_) {
      if (const auto action = link->on_exit(vcpu, exit)) {
        judgement.claimed = action;
        return judgement;
      }
    }
  }
  judgement.stopped = true;
  // KVM has completed the HLT: RIP is past its one byte.
  judgement.what =
      fmt::format("vCPU {} executed HLT at RIP {:#x} {}", vcpu.index(), regs.rip - 1, check.detail);
  return judgement;
}

ExitAction Machine::check_halted(VcpuRunner& vcpu, std::uint64_t generation) {
  constexpr auto kRoundPatience = std::chrono::milliseconds(200);
  const std::size_t count = vcpus_.size();
  std::unique_lock lock(halt_round_.mutex);
  const auto current = [&] { return halt_round_.active && halt_round_.generation == generation; };
  const auto end_round = [&] {
    halt_round_.active = false;
    halt_round_.changed.notify_all();
  };
  if (!current()) return ExitAction::kResume;
  // Phase 1: judge, and wait outside KVM_RUN while the others judge.
  lock.unlock();
  StopJudgement judgement = judge_stop(vcpu, false);
  lock.lock();
  if (!current()) return ExitAction::kResume;
  if (!judgement.stopped) {
    end_round();
    return ExitAction::kResume;
  }
  if (++halt_round_.reports == count) {
    halt_round_.phase = 2;
    halt_round_.reports = 0;
    halt_round_.changed.notify_all();
  } else {
    const bool complete = halt_round_.changed.wait_for(lock, kRoundPatience, [&] {
      return !current() || halt_round_.phase == 2 || finishing() || vcpu.pause_requested_.load();
    });
    if (!current()) return ExitAction::kResume;
    if (!complete || halt_round_.phase != 2) {
      end_round();
      return ExitAction::kResume;
    }
  }
  // Phase 2: every vCPU is outside KVM_RUN, so nothing changes between the judgements (an IPI
  // sent after a vCPU's first judgement is now pending in its local APIC).
  lock.unlock();
  judgement = judge_stop(vcpu, true);
  lock.lock();
  if (!current()) return judgement.claimed.value_or(ExitAction::kResume);
  if (!judgement.stopped) {
    end_round();
    return judgement.claimed.value_or(ExitAction::kResume);
  }
  halt_round_.stopped[vcpu.index()] = judgement.what;
  // Not the last: back into KVM_RUN, where nothing can wake it unless a later judgement finds a
  // wake source (then the run goes on as usual).
  if (++halt_round_.reports < count) return ExitAction::kResume;
  std::string what;
  for (const std::string& part : halt_round_.stopped) what += (what.empty() ? "" : "; ") + part;
  end_round();
  lock.unlock();
  return halted(vcpu, count == 1 ? what : "every vCPU is stopped for good: " + what);
}

ExitAction Machine::halted(VcpuRunner& vcpu, const std::string& what) {
  serial_out_.flush();
  RunOutcome outcome;
  outcome.kind = RunOutcome::Kind::kHalted;
  outcome.status = status::kHalted;
  outcome.vcpu = vcpu.index();
  outcome.report = fmt::format("drvm: guest halted: {}\n", what);
  return end_with_fault(vcpu, std::move(outcome));
}

void Machine::serial_input_loop() {
  // Reads input only while the guest waits for it by interrupt; a polling guest reads it itself.
  try {
    while (!finishing()) {
      if (!com1_.wants_input()) {
        std::this_thread::sleep_for(kSerialInputInterval);
        continue;
      }
      pollfd request{com1_.input_fd(), POLLIN, 0};
      if (request.fd < 0) continue;
      const int ready = ::poll(&request, 1, static_cast<int>(kSerialInputInterval.count()));
      if (ready > 0) com1_.pump_input();
    }
  } catch (const std::exception& error) {  // KVM_IRQ_LINE failed
    RunOutcome outcome;
    outcome.kind = RunOutcome::Kind::kInternalError;
    outcome.status = status::kInternal;
    outcome.report = fmt::format("drvm: serial input: {}\n", error.what());
    finish(std::move(outcome));
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

ExitAction Machine::default_exit(VcpuRunner& vcpu, const VmExit& exit) {
  const unsigned index = vcpu.index();
  const kvm_run& run = exit.run;
  switch (exit.kind) {
    case ExitKind::kHlt: {
      // Only without an in-kernel local APIC, which drvm always creates; kept for completeness.
      const kvm_regs regs = vcpu.vcpu().regs();
      return halted(vcpu,
                    fmt::format("vCPU {} executed HLT at RIP {:#x} {}", index, regs.rip - 1,
                                (regs.rflags & x86::kRflagsIf) != 0 ? "with interrupts enabled"
                                                                    : "with interrupts disabled"));
    }
    case ExitKind::kShutdown:
      return fail(
          vcpu, RunOutcome::Kind::kTripleFault, status::kTripleFault,
          fmt::format("triple fault: vCPU {} shut down (KVM_EXIT_SHUTDOWN); the guest hit an "
                      "exception it could not deliver",
                      index));
    case ExitKind::kInternalError: {
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
    case ExitKind::kFailEntry:
      return fail(
          vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
          fmt::format("KVM could not enter vCPU {} (KVM_EXIT_FAIL_ENTRY): hardware reason {:#x} "
                      "on host CPU {}",
                      index, run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu));
    case ExitKind::kUnknown:
      return fail(vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
                  fmt::format("unknown exit on vCPU {} (KVM_EXIT_UNKNOWN): hardware reason {:#x}",
                              index, run.hw.hardware_exit_reason));
    case ExitKind::kException:
      return fail(vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
                  fmt::format("unhandled exception exit on vCPU {}: vector {} error code {:#x}",
                              index, run.ex.exception, run.ex.error_code));
    case ExitKind::kDebug:
      return fail(vcpu, RunOutcome::Kind::kInternalError, status::kInternal,
                  fmt::format("unexpected debug exit on vCPU {} (no debugger attached): pc {:#x} "
                              "DR6 {:#x} DR7 {:#x} exception {}",
                              index, run.debug.arch.pc, run.debug.arch.dr6, run.debug.arch.dr7,
                              run.debug.arch.exception));
    case ExitKind::kSystemEvent:
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
