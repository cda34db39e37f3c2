// The sandbox each probe runs in: a fresh VM with 2 MiB of RAM, its one vCPU already in 64-bit
// long mode (identity paging of the first 1 GiB, flat GDT, an IDT whose gates point at the probe
// handlers) and the probe programs of probe_guests.S copied in. Every KVM_RUN is bounded by the
// probe's deadline, so a guest that misbehaves can never hang the probe.
#pragma once

#include <linux/kvm.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "vmm/kvm/guest_memory.hpp"
#include "vmm/kvm/kvm.hpp"

// Labels of probe_guests.S (the blob is copied whole, labels become guest addresses).
extern "C" {
extern const std::uint8_t drvm_probe_guests_begin[], drvm_probe_guests_end[];
extern const std::uint8_t drvm_probe_vector_stubs[], drvm_probe_db_handler[],
    drvm_probe_bp_handler[];
extern const std::uint8_t drvm_probe_hw_insn_bp_begin[], drvm_probe_hw_insn_bp_target[];
extern const std::uint8_t drvm_probe_data_write_begin[], drvm_probe_data_write_after[];
extern const std::uint8_t drvm_probe_data_read_begin[], drvm_probe_data_read_after[];
extern const std::uint8_t drvm_probe_guest_data_bp_begin[], drvm_probe_guest_data_bp_after[];
extern const std::uint8_t drvm_probe_guest_insn_bp_begin[], drvm_probe_guest_insn_bp_target[];
extern const std::uint8_t drvm_probe_gd_begin[];
extern const std::uint8_t drvm_probe_int3_begin[], drvm_probe_int3_int3[];
extern const std::uint8_t drvm_probe_step_begin[], drvm_probe_step_second[],
    drvm_probe_step_third[];
extern const std::uint8_t drvm_probe_readonly_begin[], drvm_probe_readonly_write[],
    drvm_probe_readonly_after[];
extern const std::uint8_t drvm_probe_mmio_begin[], drvm_probe_mmio_after_read[],
    drvm_probe_mmio_write[], drvm_probe_mmio_after_write[];
extern const std::uint8_t drvm_probe_mmio_loop_begin[];
extern const std::uint8_t drvm_probe_inject_begin[];
}

namespace drvm::vmm::probe_detail {

// Guest-physical layout; the addresses and ports also appear in probe_guests.S.
inline constexpr std::uint64_t kRamSize = 2 << 20;
inline constexpr std::uint64_t kGdtAddress = 0x500;
inline constexpr std::uint64_t kIdtAddress = 0x1000;
inline constexpr std::uint64_t kPml4Address = 0x2000;  // then the PDPT and the PD
inline constexpr std::uint64_t kStackTop = 0x7000;
inline constexpr std::uint64_t kCodeBase = 0x8000;
inline constexpr std::uint64_t kDataAddress = 0x10000;
inline constexpr std::uint64_t kReadOnlyAddress = 0x200000;  // outside RAM: an extra memslot
inline constexpr std::uint64_t kReadOnlyCodeAddress = 0x200100;
inline constexpr std::uint64_t kMmioAddress = 0x400000;  // no memslot at all

inline constexpr std::uint16_t kPortReport = 0xe0;
inline constexpr std::uint16_t kPortDbDr6 = 0xe1;
inline constexpr std::uint16_t kPortDbRip = 0xe2;
inline constexpr std::uint16_t kPortBpRip = 0xe3;
inline constexpr std::uint16_t kPortUnexpected = 0xef;

// Where a label of probe_guests.S lives in the guest.
std::uint64_t guest_address(const std::uint8_t* label);

// An OUT from a probe program: which port, which value.
struct PortWrite {
  std::uint16_t port;
  std::uint32_t value;
};
std::optional<PortWrite> port_write(const kvm_run& run);

// One line naming an exit, e.g. "KVM_EXIT_IO out port 0xe0 value 0x1".
std::string describe_exit(const kvm_run& run);

// Interrupts KVM_RUN at a deadline: a per-thread POSIX timer sends SIGRTMIN+3 (whose handler
// does nothing, so KVM_RUN returns EINTR), re-firing until the run loop notices the deadline.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::steady_clock::time_point deadline);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  bool expired() const { return std::chrono::steady_clock::now() >= deadline_; }

 private:
  std::chrono::steady_clock::time_point deadline_;
  timer_t timer_{};
};

class ProbeVm {
 public:
  // A VM whose vCPU starts at `entry` (a guest address from guest_address()).
  ProbeVm(const System& system, std::uint64_t entry, std::chrono::milliseconds timeout);
  ProbeVm(const ProbeVm&) = delete;
  ProbeVm& operator=(const ProbeVm&) = delete;

  enum class Stop { exit, interrupted, timed_out };
  // One KVM_RUN. `exit`: run_area() holds an exit to examine; `interrupted`: KVM_RUN returned
  // EINTR because immediate_exit was set; `timed_out`: the probe's deadline passed.
  Stop run();

  Vm& vm() { return vm_; }
  Vcpu& vcpu() { return vcpu_; }
  kvm_run& run_area() { return vcpu_.run_area(); }
  std::span<std::uint8_t> ram() {
    return {reinterpret_cast<std::uint8_t*>(ram_.host_base()), kRamSize};
  }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  GuestMemory ram_;  // declared first: outlives the VM that maps it
  Vm vm_;
  Vcpu vcpu_;
  std::chrono::milliseconds timeout_;
  Watchdog watchdog_;
};

}  // namespace drvm::vmm::probe_detail
