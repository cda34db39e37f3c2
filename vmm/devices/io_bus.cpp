#include "vmm/devices/io_bus.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace drvm::vmm {

namespace {

template <typename Range, typename Address>
void check_free(const std::vector<Range>& ranges, Address base, Address length,
                const std::string& name) {
  if (length == 0) throw std::logic_error(fmt::format("device {}: empty range", name));
  for (const auto& range : ranges) {
    const bool overlaps = base < range.base + range.length && range.base < base + length;
    if (overlaps) {
      throw std::logic_error(fmt::format("device {} at {:#x} overlaps {} at {:#x}", name, base,
                                         range.name, range.base));
    }
  }
}

}  // namespace

void IoBus::add_ports(std::uint16_t base, std::uint16_t length, PortDevice& device,
                      std::string name) {
  // In 32 bits so that a range ending at 0xffff does not wrap.
  check_free(ports_, std::uint32_t{base}, std::uint32_t{length}, name);
  ports_.push_back({base, length, &device, std::move(name)});
}

void IoBus::add_mmio(std::uint64_t base, std::uint64_t length, MmioDevice& device,
                     std::string name) {
  check_free(mmio_, base, length, name);
  mmio_.push_back({base, length, &device, std::move(name)});
}

}  // namespace drvm::vmm
