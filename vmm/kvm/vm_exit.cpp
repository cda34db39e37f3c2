#include "vmm/kvm/vm_exit.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace drvm::vmm {

namespace {

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

}  // namespace

VmExit decode_exit(kvm_run& run) {
  VmExit exit{ExitKind::kOther, run.exit_reason, run};
  switch (run.exit_reason) {
    case KVM_EXIT_IO:
      exit.kind = ExitKind::kIo;
      exit.io = {run.io.port, run.io.size, run.io.direction == KVM_EXIT_IO_OUT, run.io.count,
                 reinterpret_cast<std::uint8_t*>(&run) + run.io.data_offset};
      break;
    case KVM_EXIT_MMIO:
      exit.kind = ExitKind::kMmio;
      exit.mmio = {run.mmio.phys_addr, std::min<std::uint32_t>(run.mmio.len, sizeof run.mmio.data),
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

std::string exit_reason_name(std::uint32_t reason) {
  if (reason < std::size(kExitNames)) return kExitNames[reason];
  return fmt::format("unknown exit reason {}", reason);
}

}  // namespace drvm::vmm
