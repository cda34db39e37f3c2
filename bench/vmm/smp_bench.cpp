// Several vCPUs, interrupts and timers (issue 12), drvm beside QEMU TCG in one run:
//   startup/*       smp-hello.elf with 1 and 2 CPUs: wall time from posix_spawn to the first
//                   serial line (printed once every CPU is up) and to the exit (one process each)
//   ipi/*           smpwork.elf work=ipi: CPU 0 and CPU 1 ping-pong fixed IPIs; time per round
//                   trip from the guest's TSC
//   timer/*         smpwork.elf work=timer: a loop with and without the local APIC timer periodic
//                   at 5 kHz; the extra TSC cycles per tick
//   shared_write/*  smpwork.elf work=shared: both CPUs increment smpwork_shared; drvm without and
//                   with `--event mem:smpwork_shared:w` (a VM-wide write watch): time per write
//                   from the guest's TSC, VM exits per second and per write, hits
// drvm runs in this process (a Machine and a DebugController, as `drvm run` builds them), so that
// the VM exits are counted: `user_exits` are the exits that reach drvm (its per-vCPU counters),
// `kvm_exits` every exit the kernel took, in-kernel ones included (KVM's "exits" statistic). QEMU
// runs as `qemu-system-x86_64 -M microvm,ioapic2=off -accel tcg -smp N`. Guest cycles become
// nanoseconds through the host's TSC rate (measured here): KVM and QEMU TCG both give the guest
// the host's TSC rate. After the Google Benchmark output a summary prints the means and the ratios
// QEMU TCG / drvm (and watched / unwatched).
//
// The drvm benchmarks need /dev/kvm: without it they are reported as errors saying so, and the
// QEMU ones still run. Environment: DRVM_BENCH_DRVM (the drvm binary for startup/*),
// DRVM_BENCH_RUNS (runs per benchmark, default 5), DRVM_BENCH_IPI_ROUNDS (10000),
// DRVM_BENCH_TIMER_LOOPS (50000000), DRVM_BENCH_SHARED_WRITES (20000, per CPU).
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <unistd.h>
#include <x86intrin.h>

#include <fmt/format.h>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "elf_symbols.hpp"
#include "kvm_exit_stats.hpp"
#include "launch.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/machine.hpp"
#include "vmm/probe/probe.hpp"

namespace {

using namespace drvm;

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const std::uint64_t value = std::strtoull(env_or(name, "0").c_str(), nullptr, 10);
  return value != 0 ? value : fallback;
}

const std::string kDrvm = env_or("DRVM_BENCH_DRVM", DRVM_BINARY);
const std::string kQemu = "/usr/bin/qemu-system-x86_64";
const std::string kSmpHello = std::string(DRVM_GUEST_DIR) + "/smp-hello.elf";
const std::string kSmpWork = std::string(DRVM_GUEST_DIR) + "/smpwork.elf";
const std::uint64_t kRuns = env_number("DRVM_BENCH_RUNS", 5);
const std::uint64_t kIpiRounds = env_number("DRVM_BENCH_IPI_ROUNDS", 10000);
const std::uint64_t kTimerLoops = env_number("DRVM_BENCH_TIMER_LOOPS", 50000000);
const std::uint64_t kSharedWrites = env_number("DRVM_BENCH_SHARED_WRITES", 20000);
constexpr const char* kNoKvm =
    "/dev/kvm is missing or not usable: the drvm benchmarks need KVM (run them on a KVM host)";

bool kvm_usable() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

// The host's TSC ticks per nanosecond, measured over 200 ms.
double tsc_per_ns() {
  static const double rate = [] {
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t tsc_start = __rdtsc();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::uint64_t tsc_end = __rdtsc();
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    return static_cast<double>(tsc_end - tsc_start) / ns;
  }();
  return rate;
}

// Each benchmark's counters, averaged over its runs, for the summary.
std::map<std::string, std::map<std::string, double>> g_results;

void record(benchmark::State& state, const std::string& name,
            const std::map<std::string, double>& sums) {
  auto& row = g_results[name];
  for (const auto& [counter, sum] : sums) {
    const double mean = sum / static_cast<double>(state.iterations());
    state.counters[counter] = mean;
    row[counter] = mean;
  }
}

std::vector<std::string> qemu_argv(const std::string& image, unsigned cpus,
                                   const std::string& cmdline) {
  std::vector<std::string> argv = {kQemu,
                                   "-M",
                                   "microvm,ioapic2=off",
                                   "-accel",
                                   "tcg",
                                   "-nodefaults",
                                   "-nographic",
                                   "-no-reboot",
                                   "-kernel",
                                   image,
                                   "-device",
                                   "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                   "-serial",
                                   "stdio",
                                   "-smp",
                                   std::to_string(cpus)};
  if (!cmdline.empty()) argv.insert(argv.end(), {"-append", cmdline});
  return argv;
}

// ---- startup ----
void bm_startup(benchmark::State& state, const std::string& name, bool drvm, unsigned cpus) {
  if (drvm && !kvm_usable()) {
    state.SkipWithError(kNoKvm);
    return;
  }
  const std::vector<std::string> argv =
      drvm ? std::vector<std::string>{kDrvm, "run", kSmpHello, "--cpus", std::to_string(cpus)}
           : qemu_argv(kSmpHello, cpus, "");
  const std::string expected = fmt::format("smp-hello: {} of {} CPUs up\n", cpus, cpus);
  std::map<std::string, double> sums;
  for (auto _ : state) {
    const bench::Launch run = bench::launch(argv);
    if (!run.error.empty() || run.status != 1 || run.output.find(expected) == std::string::npos) {
      state.SkipWithError(
          run.error.empty()
              ? fmt::format("{} exited with {}: {}", argv[0], run.status, run.output).c_str()
              : run.error.c_str());
      return;
    }
    state.SetIterationTime(run.exit_ms / 1000.0);
    sums["first_line_ms"] += run.first_line_ms;
    sums["exit_ms"] += run.exit_ms;
  }
  record(state, name, sums);
}

// ---- smpwork.elf under drvm (in process) and QEMU ----
struct GuestRun {
  std::string serial;
  double seconds = 0;  // Machine::run's wall time (drvm), the process's (QEMU)
  double user_exits = 0, hits = 0;
  double kvm_exits = 0;  // negative: the kernel gives no statistics (before Linux 5.14)
  std::string error;
};

std::string read_memfd(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t got;
  ::lseek(fd, 0, SEEK_SET);
  while ((got = ::read(fd, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(got));
  return text;
}

GuestRun run_drvm(const std::string& cmdline, unsigned cpus, const char* watched_symbol) {
  GuestRun result;
  const vmm::System system = vmm::System::open();
  const vmm::BootImage image = vmm::read_image(kSmpWork);
  const int serial = ::memfd_create("serial", 0);
  vmm::MachineConfig config;
  config.memory_size = 64ULL << 20;
  config.vcpu_count = cpus;
  config.cmdline = cmdline;
  config.serial_out_fd = serial;
  vmm::Machine machine(system, config);
  machine.boot(image);
  vmm::debug::DebugController controller(machine, vmm::debug::probe_on_demand(system),
                                         vmm::debug::DebugOptions{}, &image);
  if (watched_symbol != nullptr) {
    bp::EventSpec spec;
    spec.binding = bp::Binding::target_all(vmm::debug::kSessionOwner);
    spec.attr = {test::elf_symbol_address(kSmpWork, watched_symbol).value_or(0), 4,
                 bp::BpType::kWrite};
    if (!controller.create_event(spec).ok()) {
      ::close(serial);
      result.error = "create_event failed";
      return result;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const vmm::RunOutcome outcome = machine.run(std::chrono::seconds(300));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (std::size_t index = 0; index < machine.vcpu_count(); ++index) {
    result.user_exits += static_cast<double>(machine.vcpu(index).counters().total);
    const auto kernel_exits = bench::kvm_vcpu_exits(machine.vcpu(index).vcpu().fd());
    result.kvm_exits = kernel_exits && result.kvm_exits >= 0
                           ? result.kvm_exits + static_cast<double>(*kernel_exits)
                           : -1;
    result.hits += static_cast<double>(controller.counters(static_cast<unsigned>(index)).host_hits);
  }
  result.serial = read_memfd(serial);
  ::close(serial);
  if (outcome.status != vmm::status::exit_port(0))
    result.error = fmt::format("smpwork {} failed under drvm: {}", cmdline, result.serial);
  return result;
}

GuestRun run_qemu(const std::string& cmdline, unsigned cpus) {
  GuestRun result;
  const bench::Launch run = bench::launch(qemu_argv(kSmpWork, cpus, cmdline));
  result.serial = run.output;
  result.seconds = run.exit_ms / 1000.0;
  if (!run.error.empty())
    result.error = run.error;
  else if (run.status != 1)
    result.error = fmt::format("smpwork {} failed under QEMU (status {}): {}", cmdline, run.status,
                               run.output);
  return result;
}

GuestRun run_guest(benchmark::State& state, bool drvm, const std::string& cmdline, unsigned cpus,
                   const char* watched_symbol = nullptr) {
  if (drvm && !kvm_usable()) {
    state.SkipWithError(kNoKvm);
    GuestRun skipped;
    skipped.error = kNoKvm;
    return skipped;
  }
  GuestRun run = drvm ? run_drvm(cmdline, cpus, watched_symbol) : run_qemu(cmdline, cpus);
  if (!run.error.empty()) state.SkipWithError(run.error.c_str());
  return run;
}

// The numbers of `pattern`'s groups in the guest's line; empty (and the benchmark skipped) when
// it is missing.
std::vector<double> parse(benchmark::State& state, const GuestRun& run, const char* pattern) {
  std::smatch match;
  if (!std::regex_search(run.serial, match, std::regex(pattern))) {
    state.SkipWithError(fmt::format("no result line in: {}", run.serial).c_str());
    return {};
  }
  std::vector<double> numbers;
  for (std::size_t group = 1; group < match.size(); ++group)
    numbers.push_back(std::stod(match[group]));
  return numbers;
}

void bm_ipi(benchmark::State& state, const std::string& name, bool drvm) {
  const std::string cmdline = fmt::format("work=ipi rounds={}", kIpiRounds);
  std::map<std::string, double> sums;
  for (auto _ : state) {
    const GuestRun run = run_guest(state, drvm, cmdline, 2);
    if (!run.error.empty()) return;
    const auto numbers = parse(state, run, R"(smpwork: ipi: (\d+) round trips in (\d+) cycles)");
    if (numbers.empty()) return;
    const double ns = numbers[1] / tsc_per_ns();
    state.SetIterationTime(ns / 1e9);
    sums["ns_per_round_trip"] += ns / numbers[0];
    if (drvm) {
      if (run.kvm_exits >= 0) sums["kvm_exits_per_round_trip"] += run.kvm_exits / numbers[0];
      sums["user_exits_per_round_trip"] += run.user_exits / numbers[0];
    }
  }
  record(state, name, sums);
}

void bm_timer(benchmark::State& state, const std::string& name, bool drvm) {
  const std::string cmdline = fmt::format("work=timer loops={}", kTimerLoops);
  std::map<std::string, double> sums;
  for (auto _ : state) {
    const GuestRun run = run_guest(state, drvm, cmdline, 1);
    if (!run.error.empty()) return;
    const auto numbers = parse(
        state, run, R"(smpwork: timer: (\d+) ticks, (\d+) cycles with the timer, (\d+) without)");
    if (numbers.empty()) return;
    const double extra_ns = (numbers[1] - numbers[2]) / tsc_per_ns();
    state.SetIterationTime(numbers[1] / tsc_per_ns() / 1e9);
    sums["ticks"] += numbers[0];
    sums["ns_per_tick"] += extra_ns / numbers[0];
    if (drvm && run.kvm_exits >= 0) sums["kvm_exits_per_tick"] += run.kvm_exits / numbers[0];
  }
  record(state, name, sums);
}

void bm_shared_write(benchmark::State& state, const std::string& name, bool drvm, bool watched) {
  const std::string cmdline = fmt::format("work=shared writes={}", kSharedWrites);
  std::map<std::string, double> sums;
  for (auto _ : state) {
    const GuestRun run = run_guest(state, drvm, cmdline, 2, watched ? "smpwork_shared" : nullptr);
    if (!run.error.empty()) return;
    const auto numbers =
        parse(state, run, R"(smpwork: shared: (\d+) writes in (\d+) cycles, value (\d+))");
    if (numbers.empty()) return;
    if (watched && run.hits != numbers[0]) {
      state.SkipWithError(fmt::format("{} hits for {} writes", run.hits, numbers[0]).c_str());
      return;
    }
    const double ns = numbers[1] / tsc_per_ns();
    state.SetIterationTime(ns / 1e9);
    sums["ns_per_write"] += ns / numbers[0];
    if (drvm) {
      sums["hits"] += run.hits;
      sums["user_exits_per_s"] += run.user_exits / run.seconds;
      sums["user_exits_per_write"] += run.user_exits / numbers[0];
      if (run.kvm_exits >= 0) {
        sums["kvm_exits_per_write"] += run.kvm_exits / numbers[0];
        sums["kvm_exits_per_s"] += run.kvm_exits / run.seconds;
      }
    }
  }
  record(state, name, sums);
}

void print_ratio(const char* what, const std::string& numerator, const std::string& denominator,
                 const char* counter) {
  const auto top = g_results.find(numerator), bottom = g_results.find(denominator);
  if (top == g_results.end() || bottom == g_results.end() || !top->second.contains(counter) ||
      !bottom->second.contains(counter) || bottom->second.at(counter) == 0) {
    fmt::print("{:<34} (missing: {} or {} did not complete)\n", what, numerator, denominator);
    return;
  }
  fmt::print("{:<34} {:>10.3g} / {:>10.3g} = {:.2f}x\n", what, top->second.at(counter),
             bottom->second.at(counter), top->second.at(counter) / bottom->second.at(counter));
}

void print_summary() {
  fmt::print("\nmeans over {} runs each (host TSC {:.3f} GHz)\n", kRuns, tsc_per_ns());
  for (const auto& [name, counters] : g_results) {
    fmt::print("{}:", name);
    for (const auto& [counter, value] : counters) fmt::print(" {}={:.4g}", counter, value);
    fmt::print("\n");
  }
  fmt::print("\nratios\n");
  print_ratio("startup 1 CPU, QEMU TCG / drvm", "startup/qemu_tcg/cpus:1", "startup/drvm/cpus:1",
              "first_line_ms");
  print_ratio("startup 2 CPUs, QEMU TCG / drvm", "startup/qemu_tcg/cpus:2", "startup/drvm/cpus:2",
              "first_line_ms");
  print_ratio("startup drvm, 2 CPUs / 1", "startup/drvm/cpus:2", "startup/drvm/cpus:1",
              "first_line_ms");
  print_ratio("IPI round trip, QEMU TCG / drvm", "ipi/qemu_tcg", "ipi/drvm", "ns_per_round_trip");
  print_ratio("timer tick, QEMU TCG / drvm", "timer/qemu_tcg", "timer/drvm", "ns_per_tick");
  print_ratio("shared write, QEMU TCG / drvm", "shared_write/qemu_tcg_unwatched",
              "shared_write/drvm_unwatched", "ns_per_write");
  print_ratio("shared write, watched / unwatched", "shared_write/drvm_watched",
              "shared_write/drvm_unwatched", "ns_per_write");
}

// Registers function(state, name, arguments...) under name.
template <typename Function, typename... Arguments>
void add(const std::string& name, Function function, Arguments... arguments) {
  benchmark::RegisterBenchmark(
      name.c_str(), [=](benchmark::State& state) { function(state, name, arguments...); })
      ->UseManualTime()
      ->Iterations(static_cast<benchmark::IterationCount>(kRuns))
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  if (!kvm_usable()) fmt::print(stderr, "bench_vmm_smp: {}; only QEMU TCG is measured\n", kNoKvm);
  for (const unsigned cpus : {1u, 2u}) {
    add(fmt::format("startup/drvm/cpus:{}", cpus), bm_startup, true, cpus);
    add(fmt::format("startup/qemu_tcg/cpus:{}", cpus), bm_startup, false, cpus);
  }
  add("ipi/drvm", bm_ipi, true);
  add("ipi/qemu_tcg", bm_ipi, false);
  add("timer/drvm", bm_timer, true);
  add("timer/qemu_tcg", bm_timer, false);
  add("shared_write/drvm_unwatched", bm_shared_write, true, false);
  add("shared_write/drvm_watched", bm_shared_write, true, true);
  add("shared_write/qemu_tcg_unwatched", bm_shared_write, false, false);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary();
  return 0;
}
