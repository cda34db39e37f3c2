#include "vmm/probe/probe.hpp"

#include <cpuid.h>
#include <sys/ioctl.h>

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>

#include "bpcore/dr_encoding.hpp"
#include "vmm/probe/probe_vm.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm {

namespace {

using namespace probe_detail;
using Stop = ProbeVm::Stop;
using Clock = std::chrono::steady_clock;

// Values the probe programs exchange with the host.
constexpr std::uint32_t kEndReport = 1;
constexpr std::uint32_t kReadOnlyFill = 0x5a5a5a5a;
constexpr std::uint32_t kReadOnlyCodeResult = 7;
constexpr std::uint32_t kReadOnlyWriteValue = 0xcafef00d;
constexpr std::uint32_t kMmioReadValue = 0x11223344;
constexpr std::uint32_t kMmioWriteValue = 0x55667788;
constexpr std::uint32_t kDataWriteValue = 0x600d;

Finding yes(std::string detail) {
  return {Answer::yes, std::move(detail)};
}
Finding no(std::string detail) {
  return {Answer::no, std::move(detail)};
}
Finding error(std::string detail) {
  return {Answer::error, std::move(detail)};
}

struct Context {
  const System& system;
  const ProbeOptions& options;
};

ProbeVm make_vm(const Context& context, const std::uint8_t* program) {
  return ProbeVm(context.system, guest_address(program), context.options.probe_timeout);
}

std::string describe(ProbeVm& vm, Stop stop) {
  switch (stop) {
    case Stop::exit:
      return describe_exit(vm.run_area());
    case Stop::interrupted:
      return "KVM_RUN returned EINTR";
    case Stop::timed_out:
      break;
  }
  return fmt::format("no exit within the {} ms probe timeout", vm.timeout().count());
}

bool is_report(const kvm_run& run, std::uint32_t value) {
  const auto write = port_write(run);
  return write && write->port == kPortReport && write->value == value;
}

bool is_debug_exit(Stop stop, const kvm_run& run) {
  return stop == Stop::exit && run.exit_reason == KVM_EXIT_DEBUG;
}

void set_guest_debug(Vcpu& vcpu, std::uint32_t control, std::uint64_t dr0, std::uint64_t dr7) {
  kvm_guest_debug debug{};
  debug.control = KVM_GUESTDBG_ENABLE | control;
  debug.arch.debugreg[0] = dr0;
  debug.arch.debugreg[7] = dr7;
  vcpu.set_guest_debug(debug);
}

// Runs a probe body; an exception (a failed ioctl) turns every finding it fills into an error.
template <typename Body>
void guarded(std::initializer_list<Finding*> findings, Body body) {
  try {
    body();
  } catch (const std::exception& failure) {
    for (Finding* finding : findings) *finding = error(failure.what());
  }
}

// What a probe program did in the guest: the #DBs its handler reported, and how it ended.
struct GuestTrace {
  struct DebugTrap {
    std::uint32_t dr6;
    std::uint32_t rip;
  };
  std::vector<DebugTrap> debug_traps;
  bool reached_end = false;
  bool timed_out = false;
  std::string stop;  // the exit that ended the trace when it did not reach the end
};

// Runs until the program's end report, stopping early on anything unexpected or after
// `max_traps` #DBs (a fault-like #DB that repeats forever when RF is not honoured).
GuestTrace trace_guest(ProbeVm& vm, std::size_t max_traps) {
  GuestTrace trace;
  std::uint32_t dr6 = 0;
  for (;;) {
    const Stop stop = vm.run();
    const auto write = stop == Stop::exit ? port_write(vm.run_area()) : std::nullopt;
    if (!write || write->port == kPortUnexpected ||
        (write->port == kPortReport && write->value != kEndReport)) {
      trace.timed_out = stop == Stop::timed_out;
      trace.stop = write && write->port == kPortUnexpected
                       ? fmt::format("the guest took exception {}", write->value & 0xff)
                       : describe(vm, stop);
      return trace;
    }
    if (write->port == kPortReport) {
      trace.reached_end = true;
      return trace;
    }
    if (write->port == kPortDbDr6) dr6 = write->value;
    if (write->port == kPortDbRip) {
      trace.debug_traps.push_back({dr6, write->value});
      if (trace.debug_traps.size() > max_traps) {
        trace.stop = fmt::format("#DB repeated {} times at RIP {:#x}", trace.debug_traps.size(),
                                 write->value);
        return trace;
      }
    }
  }
}

// ---- host debugging through KVM_SET_GUEST_DEBUG ----------------------------------------------

void probe_hw_insn_bp(const Context& context, ProbeResult& result) {
  auto& finding = result.hw_insn_bp;
  auto& rf = result.hw_insn_bp_rf;
  guarded({&finding, &rf}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_hw_insn_bp_begin);
    const std::uint64_t target = guest_address(drvm_probe_hw_insn_bp_target);
    set_guest_debug(vm.vcpu(), KVM_GUESTDBG_USE_HW_BP, target, bp::dr7::kFixedOne | bp::dr7::l(0));
    const Stop stop = vm.run();
    const auto& debug = vm.run_area().debug.arch;
    if (!is_debug_exit(stop, vm.run_area())) {
      finding =
          stop == Stop::timed_out
              ? error(describe(vm, stop))
              : no(fmt::format("the guest ran through the breakpoint: {}", describe(vm, stop)));
      rf = no("no instruction breakpoint exit to step over");
      return;
    }
    const std::uint64_t rip = vm.vcpu().regs().rip;
    if ((debug.dr6 & bp::dr6::b(0)) == 0 || debug.pc != target || rip != target) {
      finding =
          no(fmt::format("KVM_EXIT_DEBUG with DR6 {:#x}, pc {:#x}, RIP {:#x}; expected B0 "
                         "and {:#x}",
                         debug.dr6, debug.pc, rip, target));
      rf = no("no usable instruction breakpoint exit to step over");
      return;
    }
    finding =
        yes(fmt::format("KVM_EXIT_DEBUG before the instruction: DR6 {:#x} (B0), pc = RIP = "
                        "breakpoint {:#x}",
                        debug.dr6, target));

    kvm_regs regs = vm.vcpu().regs();
    regs.rflags |= x86::kRflagsRf;
    vm.vcpu().set_regs(regs);
    const Stop again = vm.run();
    if (is_debug_exit(again, vm.run_area()) && vm.run_area().debug.arch.pc == target) {
      rf =
          no(fmt::format("re-entering with RFLAGS.RF stops again at {:#x}: disable the "
                         "breakpoint, single-step, re-arm",
                         target));
    } else if (again == Stop::exit && is_report(vm.run_area(), kEndReport)) {
      rf = yes("re-entering with RFLAGS.RF executes the instruction and runs on");
    } else if (again == Stop::timed_out) {
      rf = error(describe(vm, again));
    } else {
      rf = no(fmt::format("re-entering with RFLAGS.RF gave {}", describe(vm, again)));
    }
  });
}

// A host data breakpoint (of `type`, 4 bytes) on DATA_ADDR; `program` accesses it once.
Finding probe_hw_data_bp(const Context& context, const std::uint8_t* program,
                         const std::uint8_t* after, bp::BpType type, const char* access) {
  Finding finding;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, program);
    set_guest_debug(vm.vcpu(), KVM_GUESTDBG_USE_HW_BP, kDataAddress,
                    bp::dr7::kFixedOne | bp::encode_dr7_slot(0, {kDataAddress, 4, type}));
    const Stop stop = vm.run();
    const auto& debug = vm.run_area().debug.arch;
    const std::uint64_t expected_pc = guest_address(after);
    if (is_debug_exit(stop, vm.run_area())) {
      finding = (debug.dr6 & bp::dr6::b(0)) != 0 && debug.pc == expected_pc
                    ? yes(fmt::format("KVM_EXIT_DEBUG after the {}: DR6 {:#x} (B0), pc {:#x} "
                                      "past the instruction",
                                      access, debug.dr6, debug.pc))
                    : no(fmt::format("KVM_EXIT_DEBUG with DR6 {:#x}, pc {:#x}; expected B0 and "
                                     "{:#x}",
                                     debug.dr6, debug.pc, expected_pc));
    } else if (stop == Stop::exit && is_report(vm.run_area(), kEndReport)) {
      finding = no(fmt::format("the {} completed without a debug exit (next: {})", access,
                               describe(vm, stop)));
    } else {
      finding = stop == Stop::timed_out ? error(describe(vm, stop))
                                        : no(fmt::format("unexpected {}", describe(vm, stop)));
    }
  });
  return finding;
}

void probe_gd_exit(const Context& context, ProbeResult& result) {
  auto& finding = result.gd_exit;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_gd_begin);
    set_guest_debug(vm.vcpu(), KVM_GUESTDBG_USE_HW_BP, 0, bp::dr7::kFixedOne | bp::dr7::kGd);
    const std::uint64_t mov_dr = guest_address(drvm_probe_gd_begin);
    const Stop stop = vm.run();
    const auto& debug = vm.run_area().debug.arch;
    const auto write = stop == Stop::exit ? port_write(vm.run_area()) : std::nullopt;
    if (is_debug_exit(stop, vm.run_area())) {
      finding = (debug.dr6 & bp::dr6::kBd) != 0 && debug.pc == mov_dr
                    ? yes(fmt::format("KVM_EXIT_DEBUG before the MOV DR: DR6 {:#x} (BD), pc {:#x}",
                                      debug.dr6, debug.pc))
                    : no(fmt::format("KVM_EXIT_DEBUG with DR6 {:#x}, pc {:#x}; expected BD and "
                                     "{:#x}",
                                     debug.dr6, debug.pc, mov_dr));
    } else if (write && write->port == kPortReport && write->value == kEndReport) {
      finding = no("the guest's MOV DR ran without an exit");
    } else if (write && write->port == kPortDbDr6) {
      finding = no(fmt::format("no exit: the guest took #DB itself with DR6 {:#x}", write->value));
    } else {
      finding = stop == Stop::timed_out ? error(describe(vm, stop))
                                        : no(fmt::format("unexpected {}", describe(vm, stop)));
    }
  });
}

void probe_sw_bp(const Context& context, ProbeResult& result) {
  auto& debug_exit = result.sw_bp_debug_exit;
  auto& emulation_failure = result.sw_bp_emulation_failure;
  guarded({&debug_exit, &emulation_failure}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_int3_begin);
    set_guest_debug(vm.vcpu(), KVM_GUESTDBG_USE_SW_BP, 0, 0);
    const std::uint64_t int3 = guest_address(drvm_probe_int3_int3);
    const Stop stop = vm.run();
    const kvm_run& run = vm.run_area();
    if (stop == Stop::timed_out) {
      debug_exit = emulation_failure = error(describe(vm, stop));
      return;
    }
    if (is_debug_exit(stop, run)) {
      const bool at_int3 = run.debug.arch.exception == x86::kVectorBp && run.debug.arch.pc == int3;
      debug_exit =
          at_int3 ? yes(fmt::format("KVM_EXIT_DEBUG exception 3, pc {:#x} = the INT3",
                                    run.debug.arch.pc))
                  : no(fmt::format("{}; expected exception 3 at {:#x}", describe_exit(run), int3));
      emulation_failure = no("INT3 gives KVM_EXIT_DEBUG, not an emulation failure");
      return;
    }
    const std::uint64_t rip = vm.vcpu().regs().rip;
    if (stop == Stop::exit && run.exit_reason == KVM_EXIT_INTERNAL_ERROR) {
      debug_exit = no(fmt::format("INT3 is not intercepted: {} instead", describe_exit(run)));
      emulation_failure =
          run.internal.suberror == KVM_INTERNAL_ERROR_EMULATION && rip == int3
              ? yes(fmt::format("KVM_EXIT_INTERNAL_ERROR suberror 1 (emulation) with RIP {:#x} = "
                                "the INT3",
                                rip))
              : no(fmt::format("{} with RIP {:#x}; expected suberror 1 at {:#x}",
                               describe_exit(run), rip, int3));
      return;
    }
    const auto write = stop == Stop::exit ? port_write(run) : std::nullopt;
    const std::string seen =
        write && write->port == kPortBpRip
            ? fmt::format("INT3 went to the guest's #BP handler (RIP {:#x})", write->value)
            : fmt::format("INT3 gave {}", describe(vm, stop));
    debug_exit = no(seen);
    emulation_failure = no(seen);
  });
}

void probe_single_step(const Context& context, ProbeResult& result) {
  auto& finding = result.single_step;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_step_begin);
    const unsigned loops = std::max(1U, context.options.cost_repetitions / 2);
    kvm_regs regs = vm.vcpu().regs();
    regs.rcx = loops;
    vm.vcpu().set_regs(regs);
    set_guest_debug(vm.vcpu(), KVM_GUESTDBG_SINGLESTEP, 0, 0);
    // nop, mov, 2 per loop, the final mov; the OUT then exits as port I/O.
    const std::size_t expected_steps = 2 + 2 * std::size_t{loops} + 1;
    const std::array<std::uint64_t, 2> first_pcs{guest_address(drvm_probe_step_second),
                                                 guest_address(drvm_probe_step_third)};
    std::size_t steps = 0;
    const auto start = Clock::now();
    for (;;) {
      const Stop stop = vm.run();
      const kvm_run& run = vm.run_area();
      if (!is_debug_exit(stop, run)) {
        if (stop == Stop::exit && is_report(run, kEndReport)) break;
        finding = stop == Stop::timed_out
                      ? error(describe(vm, stop))
                      : no(fmt::format("after {} steps: {}", steps, describe(vm, stop)));
        return;
      }
      if ((run.debug.arch.dr6 & bp::dr6::kBs) == 0 ||
          (steps < first_pcs.size() && run.debug.arch.pc != first_pcs[steps])) {
        finding =
            no(fmt::format("step {}: {}; expected DR6.BS{}", steps + 1, describe_exit(run),
                           steps < first_pcs.size() ? fmt::format(" and pc {:#x}", first_pcs[steps])
                                                    : std::string{}));
        return;
      }
      ++steps;
    }
    const double elapsed_us =
        std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    if (steps != expected_steps) {
      finding = no(fmt::format("{} step exits for {} instructions", steps, expected_steps));
      return;
    }
    result.costs.single_step_exit_us = elapsed_us / static_cast<double>(steps);
    finding =
        yes(fmt::format("{} KVM_EXIT_DEBUG for {} instructions, each with DR6.BS and pc at "
                        "the next instruction",
                        steps, expected_steps));
  });
}

// ---- the guest's own debug registers -----------------------------------------------------------

void probe_guest_data_bp(const Context& context, ProbeResult& result) {
  auto& finding = result.guest_data_bp;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_guest_data_bp_begin);
    const GuestTrace trace = trace_guest(vm, 2);
    const std::uint64_t guest_dr7 = vm.vcpu().debugregs().dr7;
    const std::uint64_t after = guest_address(drvm_probe_guest_data_bp_after);
    if (trace.timed_out) {
      finding = error(trace.stop);
    } else if (trace.reached_end && trace.debug_traps.empty()) {
      finding =
          no(fmt::format("the watched write completed without a #DB (guest DR7 {:#x} per "
                         "KVM_GET_DEBUGREGS)",
                         guest_dr7));
    } else if (trace.reached_end && trace.debug_traps.size() == 1 &&
               (trace.debug_traps[0].dr6 & bp::dr6::b(0)) != 0 &&
               trace.debug_traps[0].rip == after) {
      finding = yes(fmt::format("#DB in the guest after the write: DR6 {:#x} (B0), RIP {:#x}",
                                trace.debug_traps[0].dr6, after));
    } else {
      finding = no(fmt::format("{} #DB in the guest{}; expected one with B0 at {:#x}",
                               trace.debug_traps.size(),
                               trace.reached_end ? std::string{} : ", then " + trace.stop, after));
    }
  });
}

void probe_guest_insn_bp(const Context& context, ProbeResult& result) {
  auto& finding = result.guest_insn_bp;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_guest_insn_bp_begin);
    const GuestTrace trace = trace_guest(vm, 2);
    const std::uint64_t target = guest_address(drvm_probe_guest_insn_bp_target);
    if (trace.timed_out) {
      finding = error(trace.stop);
    } else if (trace.reached_end && trace.debug_traps.size() == 1 &&
               (trace.debug_traps[0].dr6 & bp::dr6::b(0)) != 0 &&
               trace.debug_traps[0].rip == target) {
      finding =
          yes(fmt::format("#DB in the guest before the instruction: DR6 {:#x} (B0), RIP "
                          "{:#x}; RF in the frame resumes past it",
                          trace.debug_traps[0].dr6, target));
    } else if (trace.reached_end && trace.debug_traps.empty()) {
      finding = no("the guest ran through its own instruction breakpoint without a #DB");
    } else {
      finding = no(fmt::format("{} #DB in the guest{}; expected one with B0 at {:#x}",
                               trace.debug_traps.size(),
                               trace.reached_end ? std::string{} : ", then " + trace.stop, target));
    }
  });
}

// ---- memory-based mechanisms -------------------------------------------------------------------

void probe_readonly_mem(const Context& context, ProbeResult& result) {
  auto& finding = result.readonly_mem;
  auto& rip_past = result.readonly_write_rip_past;
  guarded({&finding, &rip_past}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_readonly_begin);
    result.host.readonly_mem = vm.vm().check_extension(KVM_CAP_READONLY_MEM);
    if (result.host.readonly_mem <= 0) {
      finding = no("KVM_CAP_READONLY_MEM is 0 on a VM fd");
      rip_past = no("no read-only memslots");
      return;
    }
    GuestMemory page(0x1000);
    std::memset(page.host_base(), 0x5a, page.size());
    // At RO_CODE_ADDR: mov $7, %eax (b8 07 00 00 00); ret (c3).
    const std::array<std::uint8_t, 6> code{0xb8, kReadOnlyCodeResult, 0, 0, 0, 0xc3};
    std::memcpy(page.host_base() + (kReadOnlyCodeAddress - kReadOnlyAddress), code.data(),
                code.size());
    vm.vm().set_memslot({.slot = 1,
                         .guest_phys = kReadOnlyAddress,
                         .size = page.size(),
                         .host = page.host_base(),
                         .read_only = true});

    // Expect: the read's value, the fetched code's value, then the write as MMIO.
    const std::array<std::pair<std::uint32_t, const char*>, 2> reports{
        {{kReadOnlyFill, "read"}, {kReadOnlyCodeResult, "instruction fetch"}}};
    for (const auto& [value, what] : reports) {
      const Stop stop = vm.run();
      if (stop != Stop::exit || !is_report(vm.run_area(), value)) {
        finding = stop == Stop::timed_out ? error(describe(vm, stop))
                                          : no(fmt::format("{} from the read-only slot failed: {}",
                                                           what, describe(vm, stop)));
        rip_past = no("no write exit reached");
        return;
      }
    }
    const Stop stop = vm.run();
    const kvm_run& run = vm.run_area();
    std::uint32_t data = 0;
    std::memcpy(&data, run.mmio.data, sizeof data);
    if (stop != Stop::exit || run.exit_reason != KVM_EXIT_MMIO || !run.mmio.is_write ||
        run.mmio.phys_addr != kReadOnlyAddress || run.mmio.len != 4 ||
        data != kReadOnlyWriteValue) {
      finding = stop == Stop::timed_out
                    ? error(describe(vm, stop))
                    : no(fmt::format("the write gave {}; expected an MMIO write of {:#x} at {:#x}",
                                     describe(vm, stop), kReadOnlyWriteValue, kReadOnlyAddress));
      rip_past = no("no write exit");
      return;
    }
    const std::uint64_t rip = vm.vcpu().regs().rip;
    const std::uint64_t write_insn = guest_address(drvm_probe_readonly_write);
    const std::uint64_t after = guest_address(drvm_probe_readonly_after);
    rip_past = rip == after ? yes(fmt::format("RIP {:#x} is past the writing instruction", rip))
                            : no(fmt::format("RIP {:#x} (the write is at {:#x}, the next "
                                             "instruction at {:#x})",
                                             rip, write_insn, after));
    const Stop end = vm.run();
    std::uint32_t stored = 0;
    std::memcpy(&stored, page.host_base(), sizeof stored);
    if (end != Stop::exit || !is_report(vm.run_area(), kEndReport) || stored != kReadOnlyFill) {
      finding =
          no(fmt::format("after the write exit: {}, slot holds {:#x}", describe(vm, end), stored));
      return;
    }
    finding =
        yes(fmt::format("reads and instruction fetches run; a write is KVM_EXIT_MMIO "
                        "(is_write, data {:#x}, len 4) and leaves memory unchanged",
                        data));
  });
}

// Expects the MMIO read of the mmio program and returns whether it came as described.
bool expect_mmio_read(ProbeVm& vm, Stop stop) {
  const kvm_run& run = vm.run_area();
  return stop == Stop::exit && run.exit_reason == KVM_EXIT_MMIO && !run.mmio.is_write &&
         run.mmio.phys_addr == kMmioAddress && run.mmio.len == 4;
}

void complete_mmio_read(ProbeVm& vm, std::uint32_t value) {
  std::memcpy(vm.run_area().mmio.data, &value, sizeof value);
}

// Median, not mean: a slot deletion waits for an SRCU grace period, which a loaded host stretches
// now and then by orders of magnitude.
double measure_memslot_recreate(ProbeVm& vm, unsigned repetitions) {
  GuestMemory page(0x1000);
  const Memslot slot{
      .slot = 2, .guest_phys = kMmioAddress, .size = page.size(), .host = page.host_base()};
  const Memslot deleted{.slot = 2, .guest_phys = kMmioAddress, .size = 0, .host = nullptr};
  std::vector<double> samples_us;
  for (unsigned i = 0; i < repetitions; ++i) {
    const auto start = Clock::now();
    vm.vm().set_memslot(slot);
    vm.vm().set_memslot(deleted);
    samples_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::nth_element(samples_us.begin(), samples_us.begin() + samples_us.size() / 2,
                   samples_us.end());
  return samples_us[samples_us.size() / 2];
}

void probe_mmio_unmapped(const Context& context, ProbeResult& result) {
  auto& finding = result.mmio_unmapped;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_mmio_begin);
    Stop stop = vm.run();
    if (!expect_mmio_read(vm, stop)) {
      finding = stop == Stop::timed_out
                    ? error(describe(vm, stop))
                    : no(fmt::format("the read gave {}; expected a 4-byte MMIO read at {:#x}",
                                     describe(vm, stop), kMmioAddress));
      return;
    }
    complete_mmio_read(vm, kMmioReadValue);
    stop = vm.run();
    if (stop != Stop::exit || !is_report(vm.run_area(), kMmioReadValue)) {
      finding = no(
          fmt::format("the completed read did not return the host's data: {}", describe(vm, stop)));
      return;
    }
    stop = vm.run();
    const kvm_run& run = vm.run_area();
    std::uint32_t data = 0;
    std::memcpy(&data, run.mmio.data, sizeof data);
    if (stop != Stop::exit || run.exit_reason != KVM_EXIT_MMIO || !run.mmio.is_write ||
        run.mmio.phys_addr != kMmioAddress || run.mmio.len != 4 || data != kMmioWriteValue) {
      finding = no(fmt::format("the write gave {}; expected an MMIO write of {:#x}",
                               describe(vm, stop), kMmioWriteValue));
      return;
    }
    const std::uint64_t rip = vm.vcpu().regs().rip;
    const bool past = rip == guest_address(drvm_probe_mmio_after_write);
    finding =
        yes(fmt::format("read and write exit as KVM_EXIT_MMIO (len 4, write data {:#x}); "
                        "RIP {} the write at its exit",
                        data, past ? "already past" : "still at"));

    // The same VM times MMIO exits (the loop program) and memslot re-creation.
    kvm_regs regs = vm.vcpu().regs();
    regs.rip = guest_address(drvm_probe_mmio_loop_begin);
    regs.rcx = std::max(1U, context.options.cost_repetitions);
    vm.vcpu().set_regs(regs);
    const auto start = Clock::now();
    for (unsigned exits = 0;; ++exits) {
      stop = vm.run();
      if (stop == Stop::exit && is_report(vm.run_area(), kEndReport)) {
        if (exits != regs.rcx) break;
        result.costs.mmio_exit_us =
            std::chrono::duration<double, std::micro>(Clock::now() - start).count() / exits;
        break;
      }
      if (!expect_mmio_read(vm, stop)) break;
      complete_mmio_read(vm, kMmioReadValue);
    }
    result.costs.memslot_recreate_us =
        measure_memslot_recreate(vm, std::max(1U, context.options.cost_repetitions / 20));
  });
}

void probe_immediate_exit(const Context& context, ProbeResult& result) {
  auto& finding = result.immediate_exit_completion;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_mmio_begin);
    Stop stop = vm.run();
    if (!expect_mmio_read(vm, stop)) {
      finding = stop == Stop::timed_out
                    ? error(describe(vm, stop))
                    : no(fmt::format("no MMIO read exit to complete: {}", describe(vm, stop)));
      return;
    }
    complete_mmio_read(vm, kMmioReadValue);
    vm.run_area().immediate_exit = 1;
    stop = vm.run();
    vm.run_area().immediate_exit = 0;
    if (stop != Stop::interrupted) {
      finding = no(fmt::format("KVM_RUN with immediate_exit=1 gave {}", describe(vm, stop)));
      return;
    }
    const kvm_regs regs = vm.vcpu().regs();
    const std::uint64_t after_read = guest_address(drvm_probe_mmio_after_read);
    if (regs.rip != after_read || (regs.rax & 0xffffffff) != kMmioReadValue || regs.rbx != 0) {
      finding =
          no(fmt::format("after EINTR: RIP {:#x} (expected {:#x}), EAX {:#x} (expected "
                         "{:#x}), EBX {:#x} (expected 0)",
                         regs.rip, after_read, regs.rax, kMmioReadValue, regs.rbx));
      return;
    }
    stop = vm.run();
    if (stop != Stop::exit || !is_report(vm.run_area(), kMmioReadValue)) {
      finding = no(fmt::format("resuming after the completed read gave {}", describe(vm, stop)));
      return;
    }
    finding =
        yes(fmt::format("KVM_RUN returned EINTR with the read completed (EAX {:#x}) and RIP "
                        "{:#x} just past it; nothing else ran",
                        kMmioReadValue, after_read));
  });
}

// ---- event injection ---------------------------------------------------------------------------

void probe_db_injection(const Context& context, ProbeResult& result) {
  auto& finding = result.db_injection;
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_inject_begin);
    kvm_vcpu_events events = vm.vcpu().events();
    events.exception.injected = 1;
    events.exception.nr = x86::kVectorDb;
    events.exception.has_error_code = 0;
    events.flags = 0;
    vm.vcpu().set_events(events);
    const GuestTrace trace = trace_guest(vm, 1);
    const std::uint64_t entry = guest_address(drvm_probe_inject_begin);
    if (trace.timed_out) {
      finding = error(trace.stop);
    } else if (trace.reached_end && trace.debug_traps.size() == 1 &&
               trace.debug_traps[0].rip == entry) {
      finding = yes(fmt::format("the guest's #DB handler ran with RIP {:#x}; it saw DR6 {:#x}",
                                entry, trace.debug_traps[0].dr6));
    } else {
      finding = no(fmt::format("{} #DB in the guest{}", trace.debug_traps.size(),
                               trace.reached_end ? std::string{} : ", then " + trace.stop));
    }
  });
}

void probe_db_injection_payload(const Context& context, ProbeResult& result) {
  auto& finding = result.db_injection_payload;
  if (result.host.exception_payload <= 0) {
    finding = no("KVM_CAP_EXCEPTION_PAYLOAD is 0");
    return;
  }
  guarded({&finding}, [&] {
    ProbeVm vm = make_vm(context, drvm_probe_inject_begin);
    kvm_enable_cap enable{};
    enable.cap = KVM_CAP_EXCEPTION_PAYLOAD;
    enable.args[0] = 1;
    if (::ioctl(vm.vm().fd(), KVM_ENABLE_CAP, &enable) < 0) {
      finding = no(fmt::format("KVM_ENABLE_CAP(KVM_CAP_EXCEPTION_PAYLOAD) failed: {}",
                               std::strerror(errno)));
      return;
    }
    kvm_vcpu_events events = vm.vcpu().events();
    events.exception.injected = 0;
    events.exception.pending = 1;
    events.exception.nr = x86::kVectorDb;
    events.exception.has_error_code = 0;
    events.exception_has_payload = 1;
    events.exception_payload = bp::dr6::b(1);  // a bit nothing else sets here
    events.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    vm.vcpu().set_events(events);
    const GuestTrace trace = trace_guest(vm, 1);
    if (trace.timed_out) {
      finding = error(trace.stop);
    } else if (trace.reached_end && trace.debug_traps.size() == 1 &&
               (trace.debug_traps[0].dr6 & bp::dr6::b(1)) != 0) {
      finding = yes(fmt::format("pending #DB with payload B1: the guest saw DR6 {:#x}",
                                trace.debug_traps[0].dr6));
    } else if (trace.reached_end && trace.debug_traps.size() == 1) {
      finding =
          no(fmt::format("the guest's #DB handler ran but saw DR6 {:#x} without the "
                         "payload's B1",
                         trace.debug_traps[0].dr6));
    } else {
      finding = no(fmt::format("{} #DB in the guest{}", trace.debug_traps.size(),
                               trace.reached_end ? std::string{} : ", then " + trace.stop));
    }
  });
}

// ---- host facts --------------------------------------------------------------------------------

std::string cpu_vendor() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return "unknown";
  char vendor[13]{};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  return vendor;
}

std::string cpu_model() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  std::string brand;
  if (__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) != 0 && eax >= 0x80000004) {
    for (unsigned leaf = 0x80000002; leaf <= 0x80000004; ++leaf) {
      __get_cpuid(leaf, &eax, &ebx, &ecx, &edx);
      for (unsigned reg : {eax, ebx, ecx, edx}) brand.append(reinterpret_cast<char*>(&reg), 4);
    }
    brand.erase(brand.find_last_not_of(std::string_view{"\0 ", 2}) + 1);
    brand.erase(0, brand.find_first_not_of(' '));
  }
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const unsigned base_family = eax >> 8 & 0xf;
  const unsigned family = base_family + (base_family == 0xf ? (eax >> 20 & 0xff) : 0);
  const unsigned model =
      (eax >> 4 & 0xf) | (base_family == 0x6 || base_family == 0xf ? (eax >> 16 & 0xf) << 4 : 0);
  return fmt::format("{} (family {:#x}, model {:#x}, stepping {})",
                     brand.empty() ? "unnamed CPU" : brand, family, model, eax & 0xf);
}

// Which KVM implementation is loaded, from /sys/module (modules and built-ins with parameters).
std::string kvm_module() {
  std::string found;
  for (const char* name : {"kvm_intel", "kvm_amd", "kvm_pvm"}) {
    std::error_code ignored;
    if (std::filesystem::exists(std::filesystem::path("/sys/module") / name, ignored)) {
      found += found.empty() ? name : fmt::format(",{}", name);
    }
  }
  return found.empty() ? "unknown" : found;
}

HostFacts host_facts(const System& system) {
  HostFacts facts;
  facts.api_version = ::ioctl(system.fd(), KVM_GET_API_VERSION, 0);
  facts.nr_vcpus = system.check_extension(KVM_CAP_NR_VCPUS);
  facts.max_vcpus = system.check_extension(KVM_CAP_MAX_VCPUS);
  facts.nr_memslots = system.check_extension(KVM_CAP_NR_MEMSLOTS);
  facts.set_guest_debug = system.check_extension(KVM_CAP_SET_GUEST_DEBUG);
  facts.debugregs = system.check_extension(KVM_CAP_DEBUGREGS);
  facts.readonly_mem = system.check_extension(KVM_CAP_READONLY_MEM);
  facts.immediate_exit = system.check_extension(KVM_CAP_IMMEDIATE_EXIT);
  facts.exception_payload = system.check_extension(KVM_CAP_EXCEPTION_PAYLOAD);
  facts.cpu_vendor = cpu_vendor();
  facts.cpu_model = cpu_model();
  facts.kvm_module = kvm_module();
  return facts;
}

constexpr std::array<FindingField, 16> kFindingFields{{
    {"hw_insn_bp", "host hw instruction breakpoint", &ProbeResult::hw_insn_bp},
    {"hw_insn_bp_rf", "  RFLAGS.RF steps over it", &ProbeResult::hw_insn_bp_rf},
    {"hw_data_bp_write", "host hw data breakpoint, write", &ProbeResult::hw_data_bp_write},
    {"hw_data_bp_rw", "host hw data breakpoint, read/write", &ProbeResult::hw_data_bp_rw},
    {"guest_insn_bp", "guest's own instruction breakpoint", &ProbeResult::guest_insn_bp},
    {"guest_data_bp", "guest's own data breakpoint", &ProbeResult::guest_data_bp},
    {"gd_exit", "DR7.GD: guest MOV DR exits", &ProbeResult::gd_exit},
    {"sw_bp_debug_exit", "INT3 intercept (KVM_EXIT_DEBUG)", &ProbeResult::sw_bp_debug_exit},
    {"sw_bp_emulation_failure", "INT3 as emulation failure", &ProbeResult::sw_bp_emulation_failure},
    {"single_step", "single-step", &ProbeResult::single_step},
    {"readonly_mem", "read-only memslot", &ProbeResult::readonly_mem},
    {"readonly_write_rip_past", "  RIP past the write at exit",
     &ProbeResult::readonly_write_rip_past},
    {"mmio_unmapped", "MMIO exits on unmapped pages", &ProbeResult::mmio_unmapped},
    {"immediate_exit_completion", "immediate_exit completes MMIO",
     &ProbeResult::immediate_exit_completion},
    {"db_injection", "#DB injection", &ProbeResult::db_injection},
    {"db_injection_payload", "  with DR6 payload", &ProbeResult::db_injection_payload},
}};

}  // namespace

std::span<const FindingField> finding_fields() {
  return kFindingFields;
}

const char* answer_name(Answer answer) {
  switch (answer) {
    case Answer::yes:
      return "yes";
    case Answer::no:
      return "no";
    case Answer::error:
      break;
  }
  return "error";
}

ProbeResult run_probe(const System& system, const ProbeOptions& options) {
  const auto start = Clock::now();
  ProbeResult result;
  result.host = host_facts(system);
  const Context context{system, options};

  probe_hw_insn_bp(context, result);
  result.hw_data_bp_write =
      probe_hw_data_bp(context, drvm_probe_data_write_begin, drvm_probe_data_write_after,
                       bp::BpType::kWrite, "write");
  result.hw_data_bp_rw =
      probe_hw_data_bp(context, drvm_probe_data_read_begin, drvm_probe_data_read_after,
                       bp::BpType::kReadWrite, "read");
  probe_guest_insn_bp(context, result);
  probe_guest_data_bp(context, result);
  probe_gd_exit(context, result);
  probe_sw_bp(context, result);
  probe_single_step(context, result);
  probe_readonly_mem(context, result);
  probe_mmio_unmapped(context, result);
  probe_immediate_exit(context, result);
  probe_db_injection(context, result);
  probe_db_injection_payload(context, result);

  result.probe_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return result;
}

const ProbeResult& probe_once(const System& system) {
  static std::once_flag once;
  static ProbeResult result;
  std::call_once(once, [&] { result = run_probe(system); });
  return result;
}

}  // namespace drvm::vmm
