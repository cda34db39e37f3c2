// bench_gdb_reverse: what reverse execution in a drvm gdb session costs (issue 13), through the
// minimal RSP client (rsp_client.hpp) on replaywork.elf (guestfw/images/replaywork_main.c):
//   Forward/<pattern>/history:{on,off}  a forward run while recording (`drvm run --gdb 0`) and
//       the same run with `--history 0`, same image and packets: `continue` (one `c` over the
//       whole loop) or `breakpoints` (a Z0 on replay_tick, hit every tick iterations, with gdb's
//       sequence per hit: `g`, z0, s, Z0, c). The summary prints the ratio on / off.
//   Forward/.../history:on also gives the memory history keeps: `monitor history`'s bytes at the
//       end minus at the start, per second of the recorded run (bytes_per_s).
//   ReverseContinue/loops:N  `watch replay_first` (Z2) + `bc` from replay_done() back to the
//       write of replay_first made before the N-iteration loop: the loop's forward time (the
//       "guest time back") and the reverse-continue's time, side by side.
// Each run is one drvm process (manual time: only the measured packets). Without /dev/kvm every
// benchmark reports that as its error. Results: docs/performance.md#reverse-execution-issue-13.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "elf_symbols.hpp"
#include "rsp_client.hpp"
#include "stub_process.hpp"

namespace drvm::bench {
namespace {

constexpr const char* kImage = DRVM_GUEST_DIR "/replaywork.elf";
constexpr const char* kNoKvm =
    "/dev/kvm is missing or not usable: drvm's gdb sessions need KVM (run on a KVM host)";
constexpr int kRipRegister = 16;  // rax..r15, then rip (docs/gdb.md, Registers)

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::stoull(text) : fallback;
}

// The workload's sizes (docs/performance.md gives the values used there).
const std::uint64_t kLoops = env_number("DRVM_BENCH_LOOPS", 20000000);
const std::uint64_t kTick = env_number("DRVM_BENCH_TICK", 200000);
const std::uint64_t kPrint = env_number("DRVM_BENCH_PRINT", 100000);
const std::uint64_t kRuns = env_number("DRVM_BENCH_RUNS", 3);

bool kvm_usable() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

std::uint64_t symbol(std::string_view name) {
  const auto address = test::elf_symbol_address(kImage, name);
  if (!address) throw std::runtime_error(fmt::format("replaywork.elf has no symbol {}", name));
  return *address;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// `drvm run replaywork.elf --cmdline CMDLINE --gdb 0 [ARGS]`, held at the first instruction.
class DrvmSession {
 public:
  DrvmSession(const std::string& cmdline, const std::vector<std::string>& extra)
      : process_(arguments(cmdline, extra), std::nullopt, 30000) {}
  RspClient& client() { return process_.client(); }
  std::string log() const { return process_.log(); }

 private:
  static std::vector<std::string> arguments(const std::string& cmdline,
                                            const std::vector<std::string>& extra) {
    std::vector<std::string> args = {DRVM_BINARY, "run",   kImage, "--cmdline",
                                     cmdline,     "--gdb", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  StubProcess process_;
};

void expect_ok(const std::string& reply, std::string_view what) {
  if (reply != "OK") throw std::runtime_error(fmt::format("{}: got '{}'", what, reply));
}

void expect_stop(const std::string& reply, std::string_view what) {
  if (reply.empty() || reply[0] != 'T') {
    throw std::runtime_error(fmt::format("{}: expected a stop reply, got '{}'", what, reply));
  }
}

std::uint64_t little_endian(const std::string& hex) {
  const std::string bytes = from_hex(hex);
  std::uint64_t value = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

std::uint64_t rip(RspClient& client) {
  return little_endian(client.request(fmt::format("p{:x}", kRipRegister)));
}

std::uint64_t number_after(const std::string& text, const std::string& pattern) {
  std::smatch match;
  if (!std::regex_search(text, match, std::regex(pattern))) {
    throw std::runtime_error(fmt::format("no '{}' in: {}", pattern, text));
  }
  return std::stoull(match[1]);
}

struct HistoryCounts {
  std::uint64_t bytes = 0;
  std::uint64_t stops = 0;
  std::uint64_t snapshots = 0;
};

// `monitor history` (vmm/gdb/gdb_monitor.cpp), or zeros when reverse execution is off.
HistoryCounts history_counts(RspClient& client) {
  const std::string text = client.monitor("history");
  if (text.find("reverse execution: off") != std::string::npos) return {};
  return {number_after(text, R"(bytes: ([0-9]+))"), number_after(text, R"(stops: ([0-9]+))"),
          number_after(text, R"(snapshots: ([0-9]+))")};
}

std::uint64_t vm_exits(RspClient& client) {
  return number_after(client.monitor("events"), R"(vCPU 0: ([0-9]+) VM exits)");
}

// Runs the held guest to replay_started(): replay_first is written, the loop is next.
void run_to_start(RspClient& client) {
  const std::string started = fmt::format("{:x}", symbol("replay_started"));
  expect_ok(client.request("Z0," + started + ",1"), "Z0 replay_started");
  expect_stop(client.request("c"), "continue to replay_started");
  expect_ok(client.request("z0," + started + ",1"), "z0 replay_started");
}

// Means of each benchmark's counters, for the summary.
std::map<std::string, std::map<std::string, double>>& summary() {
  static std::map<std::string, std::map<std::string, double>> values;
  return values;
}

enum class Pattern { kContinue, kBreakpoints };

// Each sum over the iterations as a mean: a counter of the benchmark and a line of the summary.
void publish_means(benchmark::State& state, const std::string& name,
                   const std::map<std::string, double>& sums) {
  auto& means = summary()[name];
  for (const auto& [counter, sum] : sums) {
    const double mean = sum / static_cast<double>(state.iterations());
    state.counters[counter] = mean;
    means[counter] = mean;
  }
}

void bm_forward(benchmark::State& state, const std::string& name, Pattern pattern,
                std::uint64_t pages, bool history) {
  if (!kvm_usable()) {
    state.SkipWithError(kNoKvm);
    return;
  }
  const std::string cmdline =
      pattern == Pattern::kBreakpoints
          ? fmt::format("loops={} tick={} pages={} print={}", kLoops, kTick, pages, kPrint)
          : fmt::format("loops={} print={}", kLoops, kPrint);
  const std::vector<std::string> extra =
      history ? std::vector<std::string>{} : std::vector<std::string>{"--history", "0"};
  std::map<std::string, double> sums;
  try {
    const std::uint64_t done = symbol("replay_done");
    const std::uint64_t tick = symbol("replay_tick");
    for (auto _ : state) {
      DrvmSession session(cmdline, extra);
      RspClient& client = session.client();
      run_to_start(client);
      const HistoryCounts before = history_counts(client);
      expect_ok(client.request(fmt::format("Z0,{:x},1", done)), "Z0 replay_done");
      if (pattern == Pattern::kBreakpoints) {
        expect_ok(client.request(fmt::format("Z0,{:x},1", tick)), "Z0 replay_tick");
      }
      std::uint64_t stops = 0;
      const auto start = std::chrono::steady_clock::now();
      expect_stop(client.request("c"), "c");
      ++stops;
      while (true) {
        client.request("g");  // gdb reads the registers at every stop
        const std::uint64_t pc = rip(client);
        if (pc == done) break;
        if (pc != tick) throw std::runtime_error(fmt::format("stopped at {:#x}", pc));
        // gdb's step over its breakpoint, then on.
        expect_ok(client.request(fmt::format("z0,{:x},1", tick)), "z0");
        expect_stop(client.request("s"), "s");
        expect_ok(client.request(fmt::format("Z0,{:x},1", tick)), "Z0");
        expect_stop(client.request("c"), "c");
        stops += 2;
      }
      const double seconds = seconds_since(start);
      state.SetIterationTime(seconds);
      const HistoryCounts after = history_counts(client);
      const std::uint64_t exits = vm_exits(client);
      const std::uint64_t expected =
          pattern == Pattern::kBreakpoints ? 2 * (kLoops / kTick) + 1 : 1;
      if (stops != expected) {
        throw std::runtime_error(fmt::format("{} stops, expected {}", stops, expected));
      }
      sums["seconds"] += seconds;
      sums["stops"] += static_cast<double>(stops);
      sums["vm_exits"] += static_cast<double>(exits);
      sums["ms_per_stop"] += 1000 * seconds / static_cast<double>(stops);
      if (history) {
        sums["snapshots"] += static_cast<double>(after.snapshots);
        sums["bytes_start"] += static_cast<double>(before.bytes);
        sums["bytes_end"] += static_cast<double>(after.bytes);
        sums["bytes_per_s"] += static_cast<double>(after.bytes - before.bytes) / seconds;
        sums["bytes_per_snapshot"] +=
            after.snapshots > before.snapshots
                ? static_cast<double>(after.bytes - before.bytes) /
                      static_cast<double>(after.snapshots - before.snapshots)
                : 0.0;
      }
    }
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  publish_means(state, name, sums);
}

void bm_reverse_continue(benchmark::State& state, const std::string& name, std::uint64_t loops) {
  if (!kvm_usable()) {
    state.SkipWithError(kNoKvm);
    return;
  }
  std::map<std::string, double> sums;
  try {
    const std::uint64_t done = symbol("replay_done");
    const std::uint64_t first = symbol("replay_first");
    for (auto _ : state) {
      DrvmSession session(fmt::format("loops={} print={}", loops, kPrint), {});
      RspClient& client = session.client();
      run_to_start(client);
      expect_ok(client.request(fmt::format("Z0,{:x},1", done)), "Z0 replay_done");
      const auto forward_start = std::chrono::steady_clock::now();
      expect_stop(client.request("c"), "continue to replay_done");
      const double forward = seconds_since(forward_start);
      if (rip(client) != done) throw std::runtime_error("the continue did not reach replay_done");
      expect_ok(client.request(fmt::format("z0,{:x},1", done)), "z0 replay_done");
      expect_ok(client.request(fmt::format("Z2,{:x},8", first)), "Z2 replay_first");
      std::string console;
      const auto reverse_start = std::chrono::steady_clock::now();
      const std::string reply = client.request("bc", console);
      const double reverse = seconds_since(reverse_start);
      if (reply.find("watch:") == std::string::npos) {
        throw std::runtime_error(
            fmt::format("bc: expected the watchpoint's stop, got '{}' {}", reply, console));
      }
      // Stopped before the write: replay_first still holds its old value.
      const std::uint64_t value = little_endian(client.request(fmt::format("m{:x},8", first)));
      if (value != 1) {
        throw std::runtime_error(fmt::format("replay_first is {:#x} at the stop, not 1", value));
      }
      const HistoryCounts counts = history_counts(client);
      state.SetIterationTime(reverse);
      sums["forward_s"] += forward;
      sums["reverse_s"] += reverse;
      sums["reverse_per_forward"] += reverse / forward;
      sums["bytes"] += static_cast<double>(counts.bytes);
    }
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  publish_means(state, name, sums);
}

void print_summary() {
  const auto& values = summary();
  if (values.empty()) return;
  fmt::print("\nSummary (means of {} runs; DRVM_BENCH_LOOPS={} TICK={} PRINT={})\n", kRuns, kLoops,
             kTick, kPrint);
  for (const auto& [name, counters] : values) {
    fmt::print("{}:", name);
    for (const auto& [counter, value] : counters) fmt::print(" {}={:.6g}", counter, value);
    fmt::print("\n");
  }
  for (const auto& [name, counters] : values) {
    const auto at = name.find("history:on");
    if (at == std::string::npos) continue;
    const std::string off = name.substr(0, at) + "history:off" + name.substr(at + 10);
    const auto other = values.find(off);
    if (other == values.end()) continue;
    fmt::print("{}: recording / --history 0 = {:.3f}x (wall), VM exits {:.0f} vs {:.0f}\n",
               name.substr(0, at), counters.at("seconds") / other->second.at("seconds"),
               counters.at("vm_exits"), other->second.at("vm_exits"));
  }
}

template <class Function, class... Args>
void add(const std::string& name, Function function, Args... args) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& state) { function(state, name, args...); })
      ->UseManualTime()
      ->Iterations(static_cast<benchmark::IterationCount>(kRuns))
      ->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace drvm::bench

int main(int argc, char** argv) {
  using namespace drvm::bench;
  ::signal(SIGPIPE, SIG_IGN);
  if (!kvm_usable()) fmt::print(stderr, "bench_gdb_reverse: {}\n", kNoKvm);
  for (const bool history : {true, false}) {
    const char* on = history ? "on" : "off";
    add(fmt::format("Forward/continue/history:{}", on), bm_forward, Pattern::kContinue,
        std::uint64_t{1}, history);
    for (const std::uint64_t pages : {std::uint64_t{1}, std::uint64_t{64}}) {
      add(fmt::format("Forward/breakpoints/pages:{}/history:{}", pages, on), bm_forward,
          Pattern::kBreakpoints, pages, history);
    }
  }
  for (const std::uint64_t loops : {kLoops / 10, kLoops}) {
    add(fmt::format("ReverseContinue/loops:{}", loops), bm_reverse_continue, loops);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary();
  return 0;
}
