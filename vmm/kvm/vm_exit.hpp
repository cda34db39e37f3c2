// One KVM_RUN exit, decoded once on the vCPU's thread into a typed value: the run loop, the
// interceptor chain and the device buses all read this instead of switching on kvm_run again.
// The decoded fields point into the vCPU's kvm_run page (IN data and MMIO read data are written
// back there); `run` stays available for the rare reader that needs the raw page.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>

namespace drvm::vmm {

enum class ExitKind : std::uint8_t {
  kIo,             // KVM_EXIT_IO: port I/O (io)
  kMmio,           // KVM_EXIT_MMIO: an access to guest-physical memory without a memslot (mmio)
  kHlt,            // KVM_EXIT_HLT (only without an in-kernel local APIC)
  kDebug,          // KVM_EXIT_DEBUG: guest-debug stop (run.debug.arch)
  kShutdown,       // KVM_EXIT_SHUTDOWN: triple fault
  kInternalError,  // KVM_EXIT_INTERNAL_ERROR (run.internal / run.emulation_failure)
  kInterrupted,    // KVM_EXIT_INTR: a signal arrived
  kFailEntry,      // KVM_EXIT_FAIL_ENTRY
  kException,      // KVM_EXIT_EXCEPTION
  kSystemEvent,    // KVM_EXIT_SYSTEM_EVENT
  kUnknown,        // KVM_EXIT_UNKNOWN
  kOther,          // any other reason (reason says which)
};

// Port I/O: `count` elements of `size` bytes at `data` (string instructions give count > 1).
struct IoAccess {
  std::uint16_t port;
  std::uint8_t size;  // 1, 2 or 4
  bool write;         // OUT
  std::uint32_t count;
  std::uint8_t* data;  // inside kvm_run: OUT values to read, IN values to fill
};

// MMIO: one access of `size` bytes (at most 8) at guest-physical `address`.
struct MmioAccess {
  std::uint64_t address;
  std::uint32_t size;
  bool write;
  std::uint8_t* data;  // inside kvm_run: the written value, or where a read's value goes
};

struct VmExit {
  ExitKind kind;
  std::uint32_t reason;  // KVM_EXIT_*
  kvm_run& run;
  IoAccess io{};      // kIo only
  MmioAccess mmio{};  // kMmio only
};

// Decodes the exit the vCPU's last KVM_RUN returned.
VmExit decode_exit(kvm_run& run);

// Name of a KVM_EXIT_* reason ("KVM_EXIT_IO"), or "unknown exit reason N".
std::string exit_reason_name(std::uint32_t reason);

}  // namespace drvm::vmm
