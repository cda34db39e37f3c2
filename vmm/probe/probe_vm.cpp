#include "vmm/probe/probe_vm.hpp"
#include "vmm/x86/segments.hpp"
#include "vmm/x86/x86.hpp"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace drvm::vmm::probe_detail {

namespace {

// SIGRTMIN + 3: realtime signals queue and are not used by glibc (it reserves the ones below
// SIGRTMIN); the offset keeps clear of the first few that other code conventionally takes.
int watchdog_signal() {
  return SIGRTMIN + 3;
}

void ignore_signal(int) {}

// The handler only has to exist (so the signal interrupts KVM_RUN instead of killing us).
void install_watchdog_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    sigaction(watchdog_signal(), nullptr, &current);
    if (current.sa_handler != SIG_DFL) return;  // someone already handles it
    struct sigaction action {};
    action.sa_handler = ignore_signal;
    sigemptyset(&action.sa_mask);
    sigaction(watchdog_signal(), &action, nullptr);
  });
}

timespec to_timespec(std::chrono::nanoseconds duration) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(duration);
  return {static_cast<time_t>(seconds.count()), static_cast<long>((duration - seconds).count())};
}

constexpr std::uint16_t kCodeSelector = 0x08;
constexpr std::uint16_t kDataSelector = 0x10;
constexpr unsigned kIdtVectors = 32;

void store64(std::span<std::uint8_t> ram, std::uint64_t address, std::uint64_t value) {
  std::memcpy(ram.data() + address, &value, sizeof value);
}

// Identity map of the first 1 GiB with 2 MiB pages: RAM, the read-only slot and the unmapped
// page all get guest-virtual == guest-physical addresses.
void write_page_tables(std::span<std::uint8_t> ram) {
  constexpr std::uint64_t kPresentWritable = 0x3;
  constexpr std::uint64_t kLargePage = 0x80;
  const std::uint64_t pdpt = kPml4Address + 0x1000;
  const std::uint64_t pd = kPml4Address + 0x2000;
  store64(ram, kPml4Address, pdpt | kPresentWritable);
  store64(ram, pdpt, pd | kPresentWritable);
  for (std::uint64_t entry = 0; entry < 512; ++entry) {
    store64(ram, pd + entry * 8, (entry << 21) | kPresentWritable | kLargePage);
  }
}

void write_gdt(std::span<std::uint8_t> ram) {
  store64(ram, kGdtAddress, 0);
  store64(ram, kGdtAddress + kCodeSelector, 0x00af9b000000ffff);  // 64-bit code, ring 0
  store64(ram, kGdtAddress + kDataSelector, 0x00cf93000000ffff);  // flat data
}

// 64-bit interrupt gates: #DB and #BP go to their probe handlers, every other exception to a
// stub that reports its vector.
void write_idt(std::span<std::uint8_t> ram) {
  for (unsigned vector = 0; vector < kIdtVectors; ++vector) {
    const std::uint64_t handler = vector == 1 ? guest_address(drvm_probe_db_handler)
                                  : vector == 3
                                      ? guest_address(drvm_probe_bp_handler)
                                      : guest_address(drvm_probe_vector_stubs) + vector * 8;
    const std::uint64_t low = (handler & 0xffff) | (std::uint64_t{kCodeSelector} << 16) |
                              (std::uint64_t{0x8e} << 40) |  // present, DPL 0, interrupt gate
                              ((handler >> 16 & 0xffff) << 48);
    store64(ram, kIdtAddress + vector * 16, low);
    store64(ram, kIdtAddress + vector * 16 + 8, handler >> 32);
  }
}

void enter_long_mode(Vcpu& vcpu, std::uint64_t entry) {
  kvm_sregs sregs = vcpu.sregs();
  sregs.cr0 = x86::kCr0Pe | x86::kCr0Et | x86::kCr0Ne | x86::kCr0Pg;
  sregs.cr3 = kPml4Address;
  sregs.cr4 = x86::kCr4Pae;
  sregs.efer = x86::kEferLme | x86::kEferLma;
  sregs.cs = x86::flat_segment(kCodeSelector, x86::FlatSegment::kCode64);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
      x86::flat_segment(kDataSelector, x86::FlatSegment::kData);
  sregs.gdt.base = kGdtAddress;
  sregs.gdt.limit = 3 * 8 - 1;
  sregs.idt.base = kIdtAddress;
  sregs.idt.limit = kIdtVectors * 16 - 1;
  vcpu.set_sregs(sregs);

  kvm_regs regs{};
  regs.rip = entry;
  regs.rsp = kStackTop;
  regs.rflags = 0x2;  // reserved bit 1; interrupts off
  vcpu.set_regs(regs);
}

}  // namespace

std::uint64_t guest_address(const std::uint8_t* label) {
  return kCodeBase + static_cast<std::uint64_t>(label - drvm_probe_guests_begin);
}

std::optional<PortWrite> port_write(const kvm_run& run) {
  if (run.exit_reason != KVM_EXIT_IO || run.io.direction != KVM_EXIT_IO_OUT || run.io.count != 1) {
    return std::nullopt;
  }
  std::uint32_t value = 0;
  const auto* data = reinterpret_cast<const std::uint8_t*>(&run) + run.io.data_offset;
  std::memcpy(&value, data, std::min<std::size_t>(run.io.size, sizeof value));
  return PortWrite{run.io.port, value};
}

std::string describe_exit(const kvm_run& run) {
  switch (run.exit_reason) {
    case KVM_EXIT_IO:
      if (const auto write = port_write(run)) {
        return fmt::format("KVM_EXIT_IO out port {:#x} value {:#x}", write->port, write->value);
      }
      return fmt::format("KVM_EXIT_IO {} port {:#x}",
                         run.io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run.io.port);
    case KVM_EXIT_MMIO:
      return fmt::format("KVM_EXIT_MMIO {} gpa {:#x} len {}", run.mmio.is_write ? "write" : "read",
                         run.mmio.phys_addr, run.mmio.len);
    case KVM_EXIT_DEBUG:
      return fmt::format("KVM_EXIT_DEBUG exception {} pc {:#x} dr6 {:#x} dr7 {:#x}",
                         run.debug.arch.exception, run.debug.arch.pc, run.debug.arch.dr6,
                         run.debug.arch.dr7);
    case KVM_EXIT_HLT:
      return "KVM_EXIT_HLT";
    case KVM_EXIT_SHUTDOWN:
      return "KVM_EXIT_SHUTDOWN (triple fault)";
    case KVM_EXIT_INTERNAL_ERROR:
      return fmt::format("KVM_EXIT_INTERNAL_ERROR suberror {}", run.internal.suberror);
    case KVM_EXIT_FAIL_ENTRY:
      return fmt::format("KVM_EXIT_FAIL_ENTRY reason {:#x}",
                         run.fail_entry.hardware_entry_failure_reason);
    default:
      return fmt::format("exit reason {}", run.exit_reason);
  }
}

Watchdog::Watchdog(std::chrono::steady_clock::time_point deadline) : deadline_(deadline) {
  install_watchdog_handler();
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = watchdog_signal();
  event._sigev_un._tid = gettid();  // glibc 2.36 names the field only this way
  if (timer_create(CLOCK_MONOTONIC, &event, &timer_) != 0) throw KvmError("timer_create", errno);
  const auto remaining =
      std::max(deadline - std::chrono::steady_clock::now(),
               std::chrono::steady_clock::duration{std::chrono::microseconds{1}});
  itimerspec spec{};
  spec.it_value = to_timespec(remaining);
  spec.it_interval = to_timespec(std::chrono::milliseconds{10});  // until the loop notices
  if (timer_settime(timer_, 0, &spec, nullptr) != 0) {
    const int error = errno;
    timer_delete(timer_);
    throw KvmError("timer_settime", error);
  }
}

Watchdog::~Watchdog() {
  timer_delete(timer_);
}

ProbeVm::ProbeVm(const System& system, std::uint64_t entry, std::chrono::milliseconds timeout)
    : ram_(kRamSize),
      vm_(system),
      vcpu_(vm_, 0),
      timeout_(timeout),
      watchdog_(std::chrono::steady_clock::now() + timeout) {
  vm_.set_memslot({.slot = 0, .guest_phys = 0, .size = kRamSize, .host = ram_.host_base()});
  write_page_tables(ram());
  write_gdt(ram());
  write_idt(ram());
  std::memcpy(ram_.host_base() + kCodeBase, drvm_probe_guests_begin,
              static_cast<std::size_t>(drvm_probe_guests_end - drvm_probe_guests_begin));
  enter_long_mode(vcpu_, entry);
}

ProbeVm::Stop ProbeVm::run() {
  for (;;) {
    if (watchdog_.expired()) return Stop::timed_out;
    const bool immediate = vcpu_.run_area().immediate_exit != 0;
    if (vcpu_.run() == 0) return Stop::exit;
    if (immediate) return Stop::interrupted;
    // EINTR/EAGAIN without immediate_exit: the watchdog (or another signal); check the deadline.
  }
}

}  // namespace drvm::vmm::probe_detail
