// The debug engines on one guest workload (debugwork.elf work=loop: 200 iterations of a write, a
// read and a call on their own pages, then a REP STOS): wall time, VM exits and hits per run with
// no event, with one event per engine on the hot pages, with one on a cold page, and --exact.
#include <sys/mman.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "elf_symbols.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/machine.hpp"
#include "vmm/probe/probe.hpp"

namespace {

using namespace drvm;

const std::string kImage = std::string(DRVM_GUEST_DIR) + "/debugwork.elf";

// kSystemPage: a write watch on a variable beside guestfw's GDT (the first bytes of .data), which
// no page engine may protect: the vCPU single-steps while it is armed.
enum class Watch { kNone, kWrite, kRead, kExecute, kCold, kSystemPage };

void run_loop(benchmark::State& state, Watch watch, bool exact) {
  const vmm::System system = vmm::System::open();
  const vmm::debug::ProbeSource probe = vmm::debug::probe_on_demand(system);
  const vmm::BootImage image = vmm::read_image(kImage);
  const auto symbol = [&](const char* name) {
    return test::elf_symbol_address(kImage, name).value_or(0);
  };
  double exits = 0, hits = 0, steps = 0, protected_accesses = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const int serial = ::memfd_create("serial", 0);
    vmm::MachineConfig config;
    config.memory_size = 64ULL << 20;
    config.cmdline = "work=loop";
    config.serial_out_fd = serial;
    vmm::Machine machine(system, config);
    machine.boot(image);
    vmm::debug::DebugController controller(machine, probe, {exact, 64, nullptr}, &image);
    bp::EventSpec spec;
    spec.binding = bp::Binding::target_all(vmm::debug::kSessionOwner);
    switch (watch) {
      case Watch::kWrite:
        spec.attr = {symbol("host_write_target"), 8, bp::BpType::kWrite};
        break;
      case Watch::kRead:
        spec.attr = {symbol("host_read_target"), 8, bp::BpType::kRead};
        break;
      case Watch::kExecute:
        spec.attr = {symbol("host_exec_target"), 1, bp::BpType::kExecute};
        break;
      case Watch::kCold:
        spec.attr = {symbol("host_block") + 2048, 8, bp::BpType::kWrite};
        break;
      case Watch::kSystemPage:
        spec.attr = {symbol("guestfw_gdt_pointer") + 16, 8, bp::BpType::kWrite};
        break;
      case Watch::kNone:
        break;
    }
    if (watch != Watch::kNone && !controller.create_event(spec).ok()) {
      state.SkipWithError("create_event failed");
      break;
    }
    state.ResumeTiming();
    const vmm::RunOutcome outcome = machine.run(std::chrono::seconds(60));
    state.PauseTiming();
    if (outcome.status != vmm::status::exit_port(0)) state.SkipWithError("guest failed");
    exits += static_cast<double>(machine.vcpu(0).counters().total);
    const auto counters = controller.counters(0);
    hits += static_cast<double>(counters.host_hits);
    steps += static_cast<double>(counters.single_steps);
    protected_accesses += static_cast<double>(counters.protected_accesses);
    ::close(serial);
    state.ResumeTiming();
  }
  const double runs = static_cast<double>(state.iterations());
  state.counters["exits"] = exits / runs;
  state.counters["hits"] = hits / runs;
  state.counters["steps"] = steps / runs;
  state.counters["protected_accesses"] = protected_accesses / runs;
}

BENCHMARK_CAPTURE(run_loop, none, Watch::kNone, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_loop, write_hot_readonly_page, Watch::kWrite, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_loop, read_hot_unmapped_page, Watch::kRead, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_loop, execute_engine_of_probe, Watch::kExecute, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_loop, write_cold_page, Watch::kCold, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_loop, write_beside_the_gdt, Watch::kSystemPage, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_loop, exact_none, Watch::kNone, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_loop, exact_write, Watch::kWrite, true)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
