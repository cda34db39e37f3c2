// The small port devices of drvm's PC-like platform:
// - ExitPort: QEMU's isa-debug-exit at iobase=0xf4, iosize=0x04. A 1, 2 or 4-byte write of v
//   anywhere in the range ends the run with status (v << 1) | 1; reads see all ones.
// - QuietPorts: ports a PC guest touches that drvm answers as "nothing there" without a
//   --trace-io line being an anomaly: the POST/delay port 0x80 (writes dropped, reads 0xff, as
//   QEMU's ioport80), and fw_cfg's selector/data (0x510-0x511) and DMA (0x514-0x51b) ports, which
//   read all ones so that a probe's "QEMU" signature check fails as on a machine without fw_cfg.
//   With --trace-io their accesses are still listed (marked with the device's name).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "vmm/devices/io_bus.hpp"

namespace drvm::vmm {

class ExitPort final : public PortDevice {
 public:
  static constexpr std::uint16_t kBase = 0xf4;
  static constexpr std::uint16_t kSize = 4;

  // Called on the writing vCPU's thread with the value written.
  using ExitHandler = std::function<void(unsigned vcpu, std::uint32_t value)>;
  explicit ExitPort(ExitHandler on_exit) : on_exit_(std::move(on_exit)) {}

  std::uint32_t port_read(unsigned vcpu, std::uint16_t offset, unsigned size) override;
  void port_write(unsigned vcpu, std::uint16_t offset, unsigned size, std::uint32_t value) override;

 private:
  ExitHandler on_exit_;
};

class QuietPorts final : public PortDevice {
 public:
  static constexpr std::uint16_t kPostPort = 0x80;
  static constexpr std::uint16_t kFwCfgBase = 0x510;  // selector (16-bit) and data (8-bit)
  static constexpr std::uint16_t kFwCfgSize = 2;
  static constexpr std::uint16_t kFwCfgDmaBase = 0x514;  // 64-bit DMA address, big-endian halves
  static constexpr std::uint16_t kFwCfgDmaSize = 8;

  // trace: where --trace-io lines go, nullptr for none.
  QuietPorts(std::string name, std::uint16_t base, std::FILE* trace)
      : name_(std::move(name)), base_(base), trace_(trace) {}

  std::uint32_t port_read(unsigned vcpu, std::uint16_t offset, unsigned size) override;
  void port_write(unsigned vcpu, std::uint16_t offset, unsigned size, std::uint32_t value) override;

 private:
  std::string name_;
  std::uint16_t base_;
  std::FILE* trace_;
};

// All ones in the low `size` bytes: what a read of an undriven bus returns.
constexpr std::uint64_t all_ones(unsigned size) {
  return size >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * size)) - 1;
}

}  // namespace drvm::vmm
