#include "vmm/devices/platform_ports.hpp"

#include <fmt/format.h>

namespace drvm::vmm {

std::uint32_t ExitPort::port_read(unsigned, std::uint16_t, unsigned size) {
  return static_cast<std::uint32_t>(all_ones(size));
}

void ExitPort::port_write(unsigned vcpu, std::uint16_t, unsigned, std::uint32_t value) {
  on_exit_(vcpu, value);
}

std::uint32_t QuietPorts::port_read(unsigned, std::uint16_t offset, unsigned size) {
  const auto value = static_cast<std::uint32_t>(all_ones(size));
  if (trace_ != nullptr) {
    fmt::print(trace_, "drvm: io: in  port={:#06x} size={} value={:#x} ({})\n", base_ + offset,
               size, value, name_);
  }
  return value;
}

void QuietPorts::port_write(unsigned, std::uint16_t offset, unsigned size, std::uint32_t value) {
  if (trace_ != nullptr) {
    fmt::print(trace_, "drvm: io: out port={:#06x} size={} value={:#x} ({})\n", base_ + offset,
               size, value, name_);
  }
}

}  // namespace drvm::vmm
