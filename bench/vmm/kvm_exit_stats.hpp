// The kernel's own count of a vCPU's VM exits (KVM binary statistics, KVM_GET_STATS_FD: the vCPU
// stat "exits"), which includes the exits KVM handles without returning to userspace (in-kernel
// local APIC, HLT, timers) that drvm's per-vCPU counters never see.
#pragma once

#include <cstdint>
#include <optional>

namespace drvm::bench {

// The "exits" statistic of the vCPU whose file descriptor is vcpu_fd; nullopt when the kernel
// has no binary statistics (before Linux 5.14) or no such statistic.
std::optional<std::uint64_t> kvm_vcpu_exits(int vcpu_fd);

}  // namespace drvm::bench
