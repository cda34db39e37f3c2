// What `drvm test` costs: a suite of 100 small cases (hello.elf), wall time with -j 1 and -j 2;
// one `drvm run hello.elf` started directly (drvm's own cost per case); and the same suite with a
// runner that does nothing (/bin/false: status 1, "the guest wrote 0"), which leaves the harness's
// own cost per case: manifest, process start, capture, judging, reports.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness/child_process.hpp"
#include "harness/session.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kCases = 100;

// A scratch directory holding the 100-case manifest.
class SuiteDir {
 public:
  explicit SuiteDir(bool check_serial) {
    std::string pattern = (fs::temp_directory_path() / "drvm-bench-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
    std::ofstream manifest(path_ / "suite.toml");
    manifest << "name = \"bench\"\n";
    for (int i = 0; i < kCases; ++i) {
      manifest << fmt::format("[[case]]\nname = \"hello{}\"\nimage = \"{}\"\n", i,
                              DRVM_HELLO_IMAGE);
      if (check_serial) manifest << "serial.require = ['hello from the guest']\n";
    }
  }
  ~SuiteDir() { fs::remove_all(path_); }
  fs::path manifest() const { return path_ / "suite.toml"; }
  fs::path junit() const { return path_ / "junit.xml"; }

 private:
  fs::path path_;
};

void run_suite(benchmark::State& state, const std::vector<std::string>& extra) {
  SuiteDir dir(extra.empty());
  std::vector<std::string> args = {dir.manifest().string(), "-j", std::to_string(state.range(0)),
                                   "--junit", dir.junit().string()};
  args.insert(args.end(), extra.begin(), extra.end());
  const std::vector<std::string_view> views(args.begin(), args.end());
  FILE* sink = std::fopen("/dev/null", "w");
  for (auto _ : state) {
    const int status = drvm::harness::test_main(views, DRVM_BINARY, {sink, sink});
    if (status != drvm::harness::kExitAllPassed) {
      state.SkipWithError("the suite did not pass; run it by hand to see why");
      break;
    }
  }
  std::fclose(sink);
  state.counters["cases"] = kCases;
  // Wall seconds per case (printed with an SI prefix: "8.9m" is 8.9 ms).
  state.counters["per_case"] = benchmark::Counter(
      kCases, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// drvm test on 100 x hello.elf through the real drvm run.
void BM_Suite100Hello(benchmark::State& state) {
  run_suite(state, {});
}
BENCHMARK(BM_Suite100Hello)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

// The same suite (without the serial check: the runner prints nothing) against a runner that
// exits at once: the harness's own cost.
void BM_Suite100NoopRunner(benchmark::State& state) {
  run_suite(state, {"--runner", "/bin/false"});
}
BENCHMARK(BM_Suite100NoopRunner)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);

// One `drvm run hello.elf`, started and captured the way the harness does: drvm's cost per case.
void BM_DrvmRunHello(benchmark::State& state) {
  const drvm::harness::ChildSpec spec{{DRVM_BINARY, "run", DRVM_HELLO_IMAGE, "--timeout", "10"},
                                      20s};
  for (auto _ : state) {
    const auto result = drvm::harness::run_child(spec);
    if (result.wait_status != (1 << 8)) {
      state.SkipWithError("drvm run hello.elf did not exit with status 1");
      break;
    }
  }
}
BENCHMARK(BM_DrvmRunHello)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(50);

}  // namespace

BENCHMARK_MAIN();
