// One vCPU's part of the debug layer: one of each engine (each owns its per-vCPU state), the
// guest's DR access, what is armed, and the instruction in flight. Owned by the DebugController
// and touched only under its lock, or on the vCPU's own thread (the register cache).
#pragma once

#include <linux/kvm.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>

#include "bpcore/guest_dr_file.hpp"
#include "bpcore/types.hpp"
#include "vmm/debug/engines/engine.hpp"
#include "vmm/debug/engines/hardware_engine.hpp"
#include "vmm/debug/engines/int3_engine.hpp"
#include "vmm/debug/engines/page_engine.hpp"
#include "vmm/debug/engines/single_step_engine.hpp"
#include "vmm/debug/engines/stepper.hpp"
#include "vmm/debug/guest_dr_access.hpp"
#include "vmm/debug/register_cache.hpp"
#include "vmm/machine.hpp"

namespace drvm::vmm::debug {

struct DebugCounterCells {
  std::atomic<std::uint64_t> debug_exits{0}, single_steps{0}, protected_accesses{0}, trap_exits{0},
      dr_emulations{0}, host_hits{0}, guest_debug_exceptions{0}, untrapped_dr_changes{0}, rearms{0};
};

// The VM-wide things the engines of every vCPU share (memory is shared).
struct SharedEngineState {
  GuestMemory& memory;
  TrapSites& sites;
  PageGuard& pages;
  TableGuards& tables;
  const ImageCode& image_code;
};

struct VcpuDebug {
  VcpuDebug(VcpuRunner& vcpu_runner, unsigned vcpu_index, const SharedEngineState& shared,
            bp::GuestDrFile& guest_file)
      : runner(vcpu_runner),
        index(vcpu_index),
        registers(vcpu_runner.vcpu()),
        int3(shared.sites, shared.image_code),
        pages(shared.pages, shared.tables),
        step(shared.memory, shared.sites, shared.pages, pages, int3, hardware, registers),
        dr(vcpu_runner.vcpu(), guest_file) {}

  VcpuRunner& runner;
  const unsigned index;
  std::atomic<std::thread::id> thread{};
  std::atomic<bool> dirty{true};  // re-arm before the next entry

  RegisterCache registers;
  HardwareEngine hardware;
  Int3Engine int3;
  PageEngine pages;
  SingleStepEngine single_step;
  Stepper step;
  GuestDrAccess dr;

  // What is armed (written on the vCPU's own thread, under the lock), and for which schedule
  // generation, CR3, paging mode and paging-structure generation.
  bool armed = false;
  std::uint64_t armed_generation = 0;
  std::uint64_t armed_cr3 = 0;
  std::uint64_t armed_paging_mode = 0;  // CR0.PG, CR4.PAE/PSE/LA57, EFER.LMA when armed
  std::uint64_t armed_table_generation = 0;
  std::array<Engine, bp::kMaxSlots> engine{};
  std::uint64_t exec_slots = 0;  // instruction breakpoints (any engine)
  std::uint64_t data_slots = 0;  // data breakpoints (any engine)
  kvm_guest_debug wanted{};      // control without SINGLESTEP and the hardware slots
  kvm_guest_debug applied{};
  bool debug_applied = false;
  bool layout_changed = false;    // look at the layout at the next re-arm even if nothing changed
  bool rearm_after_step = false;  // the stepped instruction may have moved a system structure

  // The instruction in flight: data hits are reported once it completes (trap-like).
  bool completing = false;          // a matched protected access waits for its instruction
  bool completion_entered = false;  // immediate_exit was set for it
  bool mmio_pending = false;        // the last exit was MMIO: KVM owes the rest of the instruction
  std::uint64_t access_slots = 0;
  std::optional<AccessInfo> first_access;

  std::uint64_t skip_exec_at = kNoAddress;  // an instruction breakpoint reported here already
  bool cancel_stop = false;                 // resume() from the stop callback on this thread
  DebugCounterCells counters;
};

}  // namespace drvm::vmm::debug
