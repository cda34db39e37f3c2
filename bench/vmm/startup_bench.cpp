// Startup latency: how long from spawning the VMM process until the guest's first serial byte
// arrives on the stdout pipe (the guest's first port write), and until the process has exited.
// drvm run, QEMU microvm with TCG and QEMU microvm with KVM boot the same image side by side;
// each repetition is one process. After the Google Benchmark output a summary prints the medians
// and the ratios QEMU / drvm.
//
// Environment: DRVM_BENCH_IMAGE (default: build/guest/hello.elf), DRVM_BENCH_DRVM (default: the
// drvm built alongside), DRVM_BENCH_REPETITIONS (default 20).
#include <benchmark/benchmark.h>

#include <fmt/format.h>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "launch.hpp"

namespace {

using drvm::bench::Launch;
using drvm::bench::launch;

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

void bm_startup(benchmark::State& state, const std::vector<std::string>& argv) {
  for (auto _ : state) {
    const Launch run = launch(argv);
    // A guest exit-port write gives an odd status; anything else means the VMM failed.
    if (!run.error.empty() || run.status < 0 || run.status % 2 == 0 || run.first_byte_ms < 0) {
      state.SkipWithError(
          run.error.empty()
              ? fmt::format("{} did not run the guest to its exit port (status {}, {})", argv[0],
                            run.status, run.first_byte_ms < 0 ? "no output" : "had output")
                    .c_str()
              : run.error.c_str());
      return;
    }
    state.SetIterationTime(run.exit_ms / 1000.0);
    state.counters["first_byte_ms"] = run.first_byte_ms;
  }
}

// Keeps the median of each benchmark (exit time and first-byte time) for the summary.
class MedianCollector : public benchmark::ConsoleReporter {
 public:
  struct Medians {
    double first_byte_ms;
    double exit_ms;
  };
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.aggregate_name == "median" && !run.error_occurred) {
        medians_[run.run_name.function_name] = {run.counters.at("first_byte_ms").value,
                                                run.GetAdjustedRealTime()};
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  const std::map<std::string, Medians>& medians() const { return medians_; }

 private:
  std::map<std::string, Medians> medians_;
};

void print_summary(const MedianCollector& collector, const std::string& image, int repetitions) {
  const auto& medians = collector.medians();
  fmt::print("\nstartup medians over {} runs of {}\n", repetitions, image);
  fmt::print("{:<22} {:>14} {:>10}\n", "", "first byte ms", "exit ms");
  for (const auto& [name, median] : medians) {
    fmt::print("{:<22} {:>14.2f} {:>10.2f}\n", name, median.first_byte_ms, median.exit_ms);
  }
  const auto drvm = medians.find("startup/drvm_run");
  if (drvm == medians.end()) {
    fmt::print("no ratios: drvm run did not complete (see the error above)\n");
    return;
  }
  for (const auto& [name, median] : medians) {
    if (name == drvm->first) continue;
    fmt::print("{} / drvm: {:.1f}x to first byte, {:.1f}x to exit\n", name,
               median.first_byte_ms / drvm->second.first_byte_ms,
               median.exit_ms / drvm->second.exit_ms);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string image = env_or("DRVM_BENCH_IMAGE", DRVM_HELLO_IMAGE);
  const std::string drvm = env_or("DRVM_BENCH_DRVM", DRVM_BINARY);
  const int repetitions = std::atoi(env_or("DRVM_BENCH_REPETITIONS", "20").c_str());
  const std::string qemu = "/usr/bin/qemu-system-x86_64";
  const auto qemu_argv = [&](const char* accel) {
    return std::vector<std::string>{qemu,       "-M",      "microvm",
                                    "-accel",   accel,     "-kernel",
                                    image,      "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                    "-serial",  "stdio",   "-nographic",
                                    "-monitor", "none"};
  };
  const std::map<std::string, std::vector<std::string>> commands{
      {"drvm_run", {drvm, "run", image}},
      {"qemu_microvm_tcg", qemu_argv("tcg")},
      {"qemu_microvm_kvm", qemu_argv("kvm")},
  };
  for (const auto& [name, command] : commands) {
    benchmark::RegisterBenchmark(("startup/" + name).c_str(), bm_startup, command)
        ->UseManualTime()
        ->Iterations(1)
        ->Repetitions(repetitions > 0 ? repetitions : 20)
        ->ReportAggregatesOnly(true)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  MedianCollector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::Shutdown();
  print_summary(collector, image, repetitions > 0 ? repetitions : 20);
  return 0;
}
