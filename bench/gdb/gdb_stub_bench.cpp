// bench_gdb_stub: the gdb stub round trips of drvm and of QEMU's stub (microvm, TCG and KVM) on
// the same image (gdbwork.elf), through the same minimal RSP client (rsp_client.hpp):
//   Stepi           one `s` and its stop reply (gdb's stepi);
//   BreakpointHit   gdb's sequence to continue from a breakpoint and hit it again: z, s, Z, c
//                   (the breakpoint sits in a loop; the guest runs a few instructions between
//                   hits);
//   ReadMemory1MiB  1 MiB of guest memory (non-repeating bytes) in `m` packets of the size gdb
//                   would use for the stub's PacketSize.
// Each benchmark starts its own VMM, held at the first instruction, runs the guest to
// gdbwork_marker with a hardware breakpoint, then measures. Results:
// docs/performance.md#gdb-stub-drvm-vs-qemu-issue-5.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "elf_symbols.hpp"
#include "rsp_client.hpp"
#include "stub_process.hpp"

namespace drvm::bench {
namespace {

constexpr const char* kImage = DRVM_GUEST_DIR "/gdbwork.elf";
constexpr std::size_t kMiB = 1 << 20;

enum class Stub { kDrvm, kQemuTcg, kQemuKvm };

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::uint64_t symbol(std::string_view name) {
  const auto address = test::elf_symbol_address(kImage, name);
  if (!address) throw std::runtime_error(fmt::format("gdbwork.elf has no symbol {}", name));
  return *address;
}

// One VMM process serving gdb's protocol, held at the guest's first instruction.
// drvm's or QEMU's stub on gdbwork.elf (a marker loop that never exits), held at its first
// instruction.
class StubSession {
 public:
  explicit StubSession(Stub stub) : StubSession(stub, stub == Stub::kDrvm ? 0 : free_port()) {}
  RspClient& client() { return process_.client(); }

 private:
  StubSession(Stub stub, std::uint16_t port)
      : process_(arguments(stub, port),
                 stub == Stub::kDrvm ? std::optional<std::uint16_t>() : std::optional(port),
                 10000) {}
  static std::vector<std::string> arguments(Stub stub, std::uint16_t port) {
    const std::string cmdline = "steps=100000000";  // gdbwork_marker in a loop, never exits
    std::vector<std::string> args;
    if (stub == Stub::kDrvm) {
      args = {DRVM_BINARY, "run", kImage, "--cmdline", cmdline, "--gdb", "0"};
    } else {
      args = {"qemu-system-x86_64",
              "-M",
              "microvm",
              "-accel",
              stub == Stub::kQemuTcg ? "tcg" : "kvm",
              "-nodefaults",
              "-nographic",
              "-no-reboot",
              "-kernel",
              kImage,
              "-append",
              cmdline,
              "-device",
              "isa-debug-exit,iobase=0xf4,iosize=0x04",
              "-serial",
              "stdio",
              "-gdb",
              fmt::format("tcp:127.0.0.1:{}", port),
              "-S"};
    }
    return args;
  }
  StubProcess process_;
};

void expect_stop(const std::string& reply, std::string_view what) {
  if (reply.empty() || reply[0] != 'T') {
    throw std::runtime_error(fmt::format("{}: expected a stop reply, got '{}'", what, reply));
  }
}

void expect_ok(const std::string& reply, std::string_view what) {
  if (reply != "OK") throw std::runtime_error(fmt::format("{}: got '{}'", what, reply));
}

// Runs the held guest to gdbwork_marker (long mode, inside the loop) with a hardware breakpoint.
void run_to_marker(RspClient& client, std::uint64_t marker) {
  expect_ok(client.request(fmt::format("Z1,{:x},1", marker)), "Z1");
  expect_stop(client.request("c"), "continue to gdbwork_marker");
  expect_ok(client.request(fmt::format("z1,{:x},1", marker)), "z1");
}

template <class Body>
void with_stub(benchmark::State& state, Stub stub, Body body) {
  try {
    StubSession process(stub);
    run_to_marker(process.client(), symbol("gdbwork_marker"));
    body(process.client());
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

void Stepi(benchmark::State& state, Stub stub) {
  with_stub(state, stub, [&](RspClient& client) {
    for (auto _ : state) expect_stop(client.request("s"), "s");
  });
}

void BreakpointHit(benchmark::State& state, Stub stub, char type) {
  with_stub(state, stub, [&](RspClient& client) {
    const std::string address = fmt::format("{:x}", symbol("gdbwork_marker"));
    const std::string insert = fmt::format("Z{},{},1", type, address);
    const std::string remove = fmt::format("z{},{},1", type, address);
    expect_ok(client.request(insert), insert);
    expect_stop(client.request("c"), "c");
    for (auto _ : state) {
      expect_ok(client.request(remove), remove);
      expect_stop(client.request("s"), "s");
      expect_ok(client.request(insert), insert);
      expect_stop(client.request("c"), "c");
    }
  });
}

void ReadMemory1MiB(benchmark::State& state, Stub stub) {
  with_stub(state, stub, [&](RspClient& client) {
    const std::uint64_t buffer = symbol("big_buffer");
    const std::size_t chunk = (client.packet_size() - 32) / 2;
    // Non-repeating bytes, so run-length encoding cannot shorten the replies.
    std::string pattern(kMiB, '\0');
    std::uint32_t x = 2463534242u;
    for (char& c : pattern) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      c = static_cast<char>(x);
    }
    for (std::size_t at = 0; at < kMiB; at += chunk) {
      const std::size_t n = std::min(chunk, kMiB - at);
      expect_ok(client.request(fmt::format("M{:x},{:x}:{}", buffer + at, n,
                                           to_hex(std::string_view(pattern).substr(at, n)))),
                "M");
    }
    const std::string expected = to_hex(pattern);
    for (auto _ : state) {
      std::string hex;
      hex.reserve(2 * kMiB);
      for (std::size_t at = 0; at < kMiB; at += chunk) {
        const std::size_t n = std::min(chunk, kMiB - at);
        hex += client.request(fmt::format("m{:x},{:x}", buffer + at, n));
      }
      if (hex != expected) throw std::runtime_error("m returned other bytes than M wrote");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kMiB));
    state.counters["packets"] = static_cast<double>((kMiB + chunk - 1) / chunk);
  });
}

void register_all() {
  const struct {
    const char* name;
    Stub stub;
  } stubs[] = {{"drvm", Stub::kDrvm}, {"qemu_tcg", Stub::kQemuTcg}, {"qemu_kvm", Stub::kQemuKvm}};
  for (const auto& s : stubs) {
    const Stub stub = s.stub;
    benchmark::RegisterBenchmark(fmt::format("Stepi/{}", s.name).c_str(),
                                 [stub](benchmark::State& st) { Stepi(st, stub); })
        ->Iterations(2000)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(fmt::format("BreakpointHit/hw/{}", s.name).c_str(),
                                 [stub](benchmark::State& st) { BreakpointHit(st, stub, '1'); })
        ->Iterations(500)
        ->Unit(benchmark::kMicrosecond);
    // QEMU under KVM plants an INT3 for Z0, which KVM does not intercept on hosts where the probe
    // answers `no` for sw_bp_debug_exit (the guest then dies): software breakpoints only for drvm
    // and TCG.
    if (stub != Stub::kQemuKvm) {
      benchmark::RegisterBenchmark(fmt::format("BreakpointHit/sw/{}", s.name).c_str(),
                                   [stub](benchmark::State& st) { BreakpointHit(st, stub, '0'); })
          ->Iterations(500)
          ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark(fmt::format("ReadMemory1MiB/{}", s.name).c_str(),
                                 [stub](benchmark::State& st) { ReadMemory1MiB(st, stub); })
        ->Iterations(10)
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace
}  // namespace drvm::bench

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  benchmark::Initialize(&argc, argv);
  drvm::bench::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
