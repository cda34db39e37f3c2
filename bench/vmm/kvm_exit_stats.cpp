#include "kvm_exit_stats.hpp"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string_view>
#include <vector>

namespace drvm::bench {

std::optional<std::uint64_t> kvm_vcpu_exits(int vcpu_fd) {
  const int stats_fd = ::ioctl(vcpu_fd, KVM_GET_STATS_FD, nullptr);
  if (stats_fd < 0) return std::nullopt;
  std::optional<std::uint64_t> exits;
  kvm_stats_header header{};
  if (::pread(stats_fd, &header, sizeof header, 0) == static_cast<ssize_t>(sizeof header)) {
    // Descriptors follow one another, each the fixed part (u32 flags, s16 exponent, u16 size,
    // u32 offset, u32 bucket_size: 16 bytes in the kernel's C layout; C++ pads the header's
    // flexible-array wrapper, so sizeof(kvm_stats_desc) is not it) and name_size bytes of name.
    constexpr std::size_t kFixedSize = 16, kOffsetField = 8;
    const std::size_t descriptor_size = kFixedSize + header.name_size;
    std::vector<char> descriptors(descriptor_size * header.num_desc);
    const auto wanted = static_cast<ssize_t>(descriptors.size());
    if (::pread(stats_fd, descriptors.data(), descriptors.size(), header.desc_offset) == wanted) {
      for (std::uint32_t index = 0; index < header.num_desc && !exits; ++index) {
        const char* const at = descriptors.data() + index * descriptor_size;
        const std::string_view name(at + kFixedSize, ::strnlen(at + kFixedSize, header.name_size));
        if (name != "exits") continue;
        std::uint32_t offset = 0;
        std::memcpy(&offset, at + kOffsetField, sizeof offset);
        std::uint64_t value = 0;
        if (::pread(stats_fd, &value, sizeof value, header.data_offset + offset) ==
            static_cast<ssize_t>(sizeof value))
          exits = value;
      }
    }
  }
  ::close(stats_fd);
  return exits;
}

}  // namespace drvm::bench
