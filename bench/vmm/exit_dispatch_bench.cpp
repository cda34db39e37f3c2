// The userspace half of a port-I/O VM exit, without /dev/kvm: a COM1 transmit (OUT 0x3f8) from
// the kvm_run page to the device. `bus` is drvm's path (decode the exit once, walk the interceptor
// chain, look the port up on the IoBus, call the device); `inline_com1` is the path before the
// device buses (a range compare in the run loop, a machine-wide COM1 lock, the UART's register
// write), kept here as the reference. Both write the byte to the same UART and output buffer.
// Compare them side by side in one run; a whole exit costs 10-15 us on KVM (docs/performance.md).
#include <fcntl.h>
#include <linux/kvm.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "vmm/devices/io_bus.hpp"
#include "vmm/devices/serial.hpp"
#include "vmm/kvm/vm_exit.hpp"
#include "vmm/machine.hpp"

namespace {

using namespace drvm::vmm;

struct Setup {
  Setup() : null_fd(::open("/dev/null", O_WRONLY)), output(null_fd), com1(output, -1) {
    page.resize(4096 / sizeof(std::uint64_t));
    run = reinterpret_cast<kvm_run*>(page.data());
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = KVM_EXIT_IO_OUT;
    run->io.size = 1;
    run->io.port = Uart16550::kCom1Base;
    run->io.count = 1;
    run->io.data_offset = 1024;
    reinterpret_cast<std::uint8_t*>(run)[1024] = 'x';
    bus.add_ports(Uart16550::kCom1Base, Uart16550::kRegisterCount, com1, "COM1");
  }
  ~Setup() { ::close(null_fd); }
  int null_fd;
  SerialOutput output;
  Uart16550 com1;
  IoBus bus;
  std::vector<std::uint64_t> page;
  kvm_run* run;
  std::vector<ExitInterceptor*> chain;  // empty: a run without a debugger or a session
};

void bus(benchmark::State& state) {
  Setup setup;
  for (auto _ : state) {
    const VmExit exit = decode_exit(*setup.run);
    for (ExitInterceptor* link : setup.chain) benchmark::DoNotOptimize(link);
    if (exit.kind == ExitKind::kIo) {
      const auto* range = setup.bus.find_port(exit.io.port);
      std::uint8_t* data = exit.io.data;
      for (std::uint32_t i = 0; i < exit.io.count; ++i, data += exit.io.size) {
        std::uint32_t value = 0;
        std::memcpy(&value, data, exit.io.size);
        range->device->port_write(0, static_cast<std::uint16_t>(exit.io.port - range->base),
                                  exit.io.size, value);
      }
    }
  }
}

void inline_com1(benchmark::State& state) {
  Setup setup;
  std::mutex com1_mutex;
  ExitInterceptor* interceptor = nullptr;
  for (auto _ : state) {
    kvm_run& run = *setup.run;
    benchmark::DoNotOptimize(interceptor);
    if (run.exit_reason == KVM_EXIT_IO) {
      auto* data = reinterpret_cast<std::uint8_t*>(&run) + run.io.data_offset;
      for (std::uint32_t i = 0; i < run.io.count; ++i, data += run.io.size) {
        std::uint32_t value = 0;
        std::memcpy(&value, data, run.io.size);
        const std::uint16_t port = run.io.port;
        if (port >= Uart16550::kCom1Base &&
            port < Uart16550::kCom1Base + Uart16550::kRegisterCount) {
          std::lock_guard lock(com1_mutex);
          setup.com1.write(port - Uart16550::kCom1Base, static_cast<std::uint8_t>(value));
        }
      }
    }
  }
}

BENCHMARK(bus);
BENCHMARK(inline_com1);

}  // namespace

BENCHMARK_MAIN();
