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

// Decodes the exit the vCPU's last KVM_RUN returned. Inline: it runs on every exit, and port and
// MMIO exits (the busy ones) then need no call before their device.
inline VmExit decode_exit(kvm_run& run) {
  VmExit exit{ExitKind::kOther, run.exit_reason, run};
  switch (run.exit_reason) {
    case KVM_EXIT_IO:
      exit.kind = ExitKind::kIo;
      exit.io = {run.io.port, run.io.size, run.io.direction == KVM_EXIT_IO_OUT, run.io.count,
                 reinterpret_cast<std::uint8_t*>(&run) + run.io.data_offset};
      break;
    case KVM_EXIT_MMIO:
      exit.kind = ExitKind::kMmio;
      exit.mmio = {run.mmio.phys_addr,
                   run.mmio.len < sizeof run.mmio.data
                       ? run.mmio.len
                       : static_cast<std::uint32_t>(sizeof run.mmio.data),
                   run.mmio.is_write != 0, run.mmio.data};
      break;
    case KVM_EXIT_HLT:
      exit.kind = ExitKind::kHlt;
      break;
    case KVM_EXIT_DEBUG:
      exit.kind = ExitKind::kDebug;
      break;
    case KVM_EXIT_SHUTDOWN:
      exit.kind = ExitKind::kShutdown;
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      exit.kind = ExitKind::kInternalError;
      break;
    case KVM_EXIT_INTR:
      exit.kind = ExitKind::kInterrupted;
      break;
    case KVM_EXIT_FAIL_ENTRY:
      exit.kind = ExitKind::kFailEntry;
      break;
    case KVM_EXIT_EXCEPTION:
      exit.kind = ExitKind::kException;
      break;
    case KVM_EXIT_SYSTEM_EVENT:
      exit.kind = ExitKind::kSystemEvent;
      break;
    case KVM_EXIT_UNKNOWN:
      exit.kind = ExitKind::kUnknown;
      break;
    default:
      break;
  }
  return exit;
}

// Name of a KVM_EXIT_* reason ("KVM_EXIT_IO"), or "unknown exit reason N".
std::string exit_reason_name(std::uint32_t reason);

}  // namespace drvm::vmm
