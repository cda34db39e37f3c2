// drvm's capability probe: what this host's KVM really does for debugging, found by running tiny
// probe guests (never assumed from the CPU vendor or kernel version). The debug engines choose
// from a ProbeResult; `drvm probe` prints one (docs/probe.md explains every field).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {

// The outcome of one probe. `error` means the probe could not decide (an ioctl failed, the
// guest did something unexpected or timed out); `detail` then says why.
enum class Answer { yes, no, error };

struct Finding {
  Answer answer = Answer::error;
  std::string detail;  // one line: what was observed

  bool yes() const { return answer == Answer::yes; }
};

// Facts read from the host without running a guest.
struct HostFacts {
  int api_version = 0;        // KVM_GET_API_VERSION
  int nr_vcpus = 0;           // KVM_CAP_NR_VCPUS (recommended)
  int max_vcpus = 0;          // KVM_CAP_MAX_VCPUS
  int nr_memslots = 0;        // KVM_CAP_NR_MEMSLOTS
  int set_guest_debug = 0;    // KVM_CAP_SET_GUEST_DEBUG
  int debugregs = 0;          // KVM_CAP_DEBUGREGS
  int readonly_mem = 0;       // KVM_CAP_READONLY_MEM (asked on a VM fd)
  int immediate_exit = 0;     // KVM_CAP_IMMEDIATE_EXIT
  int exception_payload = 0;  // KVM_CAP_EXCEPTION_PAYLOAD
  std::string cpu_vendor;     // CPUID leaf 0, e.g. "AuthenticAMD"
  std::string cpu_model;      // CPUID brand string with family/model/stepping
  std::string kvm_module;     // kvm_intel, kvm_amd, kvm_pvm or "unknown" (from /sys/module)
};

// Measured costs in microseconds; empty when the mechanism does not work here.
struct ProbeCosts {
  std::optional<double> single_step_exit_us;  // one KVM_GUESTDBG_SINGLESTEP exit and re-entry
  std::optional<double> mmio_exit_us;         // one MMIO read exit on an unmapped page, completed
  std::optional<double> memslot_recreate_us;  // delete + re-create one 4 KiB memslot
};

struct ProbeResult {
  HostFacts host;

  // Host debugging through KVM_SET_GUEST_DEBUG.
  Finding hw_insn_bp;               // USE_HW_BP, RW=00: KVM_EXIT_DEBUG, DR6.B0, pc = address
  Finding hw_insn_bp_rf;            // re-entering with RFLAGS.RF set steps over that breakpoint
  Finding hw_data_bp_write;         // USE_HW_BP, RW=01: a write stops with KVM_EXIT_DEBUG, DR6.B0
  Finding hw_data_bp_rw;            // USE_HW_BP, RW=11: a read stops with KVM_EXIT_DEBUG, DR6.B0
  Finding gd_exit;                  // host DR7.GD: a guest MOV DR stops with KVM_EXIT_DEBUG, DR6.BD
  Finding sw_bp_debug_exit;         // USE_SW_BP: INT3 stops with KVM_EXIT_DEBUG at the INT3
  Finding sw_bp_emulation_failure;  // INT3 gives KVM_EXIT_INTERNAL_ERROR (emulation) at the INT3
  Finding single_step;              // SINGLESTEP: one KVM_EXIT_DEBUG per instruction, DR6.BS

  // The guest's own debug registers (MOV DR in the guest, #DB to its IDT).
  Finding guest_data_bp;  // the guest's write watchpoint raises #DB in the guest
  Finding guest_insn_bp;  // the guest's instruction breakpoint raises #DB, RF honoured

  // Memory-based mechanisms.
  Finding readonly_mem;             // KVM_MEM_READONLY: reads and fetches run, writes exit as MMIO
  Finding readonly_write_rip_past;  // at that MMIO exit RIP is already past the writing insn
  Finding mmio_unmapped;            // reads and writes of a page with no memslot exit as MMIO
  Finding immediate_exit_completion;  // immediate_exit=1 after an MMIO read: completes, EINTR

  // Event injection.
  Finding db_injection;          // KVM_SET_VCPU_EVENTS exception 1 runs the guest's #DB handler
  Finding db_injection_payload;  // ... and a DR6 payload (KVM_CAP_EXCEPTION_PAYLOAD) reaches DR6

  ProbeCosts costs;
  double probe_ms = 0;  // wall time of the whole probe
};

// One probe finding with its stable key (JSON and docs) and its table label, in report order.
struct FindingField {
  const char* key;
  const char* label;
  Finding ProbeResult::*member;
};
std::span<const FindingField> finding_fields();

struct ProbeOptions {
  // Bound on each probe guest's wall time: a probe that exceeds it reports an error.
  std::chrono::milliseconds probe_timeout{2000};
  // Exits averaged for the single-step and MMIO costs; a twentieth of it (at least 1) memslot
  // re-creations for the median memslot cost.
  unsigned cost_repetitions = 200;
};

// Runs every probe, each in a fresh VM. Throws SetupError/KvmError only when KVM cannot even
// create a VM; a single probe's failure becomes an `error` finding.
ProbeResult run_probe(const System& system, const ProbeOptions& options = {});

// The first call runs the probe on `system`; later calls return that same result (thread-safe).
// For the engines, which need the answers once per process.
const ProbeResult& probe_once(const System& system);

const char* answer_name(Answer answer);  // "yes", "no", "error"

}  // namespace drvm::vmm
