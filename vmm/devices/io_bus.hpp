// The device buses, the kvmtool way: each device registers the port or MMIO ranges it decodes,
// and the run loop hands an access to whichever device claims its address, naming none itself.
// Accesses nobody claims are the caller's to handle (all ones on read, writes dropped).
//
// Registration happens while the machine is being built (before any vCPU runs); lookups then run
// on the vCPU threads without a lock. A device serializes its own state if several vCPUs reach it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace drvm::vmm {

// A device on the port-I/O bus. `offset` is relative to the base it registered; size is 1, 2 or 4.
class PortDevice {
 public:
  virtual ~PortDevice() = default;
  virtual std::uint32_t port_read(unsigned vcpu, std::uint16_t offset, unsigned size) = 0;
  virtual void port_write(unsigned vcpu, std::uint16_t offset, unsigned size,
                          std::uint32_t value) = 0;
};

// A device on the MMIO bus (guest-physical ranges without a memslot). size is 1 to 8.
class MmioDevice {
 public:
  virtual ~MmioDevice() = default;
  virtual std::uint64_t mmio_read(unsigned vcpu, std::uint64_t offset, unsigned size) = 0;
  virtual void mmio_write(unsigned vcpu, std::uint64_t offset, unsigned size,
                          std::uint64_t value) = 0;
};

template <typename Device, typename Address>
struct BusRange {
  Address base;
  Address length;
  Device* device;
  std::string name;
};

class IoBus {
 public:
  // Throws std::logic_error when the range is empty or overlaps a registered one (a wiring bug).
  // Register the busiest device first: lookups scan in registration order.
  void add_ports(std::uint16_t base, std::uint16_t length, PortDevice& device, std::string name);
  void add_mmio(std::uint64_t base, std::uint64_t length, MmioDevice& device, std::string name);

  // The range claiming `port` / `address`, or nullptr.
  const BusRange<PortDevice, std::uint16_t>* find_port(std::uint16_t port) const {
    for (const auto& range : ports_) {
      if (static_cast<std::uint16_t>(port - range.base) < range.length) return &range;
    }
    return nullptr;
  }
  const BusRange<MmioDevice, std::uint64_t>* find_mmio(std::uint64_t address) const {
    for (const auto& range : mmio_) {
      if (address - range.base < range.length) return &range;
    }
    return nullptr;
  }

  const std::vector<BusRange<PortDevice, std::uint16_t>>& port_ranges() const { return ports_; }
  const std::vector<BusRange<MmioDevice, std::uint64_t>>& mmio_ranges() const { return mmio_; }

 private:
  std::vector<BusRange<PortDevice, std::uint16_t>> ports_;
  std::vector<BusRange<MmioDevice, std::uint64_t>> mmio_;
};

}  // namespace drvm::vmm
