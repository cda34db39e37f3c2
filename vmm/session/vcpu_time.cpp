#include "vmm/session/vcpu_time.hpp"

#include <time.h>

namespace drvm::vmm::session {

std::uint64_t thread_cpu_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(now.tv_nsec);
}

VcpuTime::VcpuTime(unsigned vcpus) : count_(vcpus), vcpus_(std::make_unique<PerVcpu[]>(vcpus)) {}

void VcpuTime::start(unsigned vcpu) {
  PerVcpu& clock = vcpus_[vcpu];
  if (clock.started.load(std::memory_order_relaxed)) return;
  const std::uint64_t now = thread_cpu_ns();
  clock.base_ns.store(now, std::memory_order_relaxed);
  clock.cpu_ns.store(now, std::memory_order_relaxed);
  clock.started.store(true, std::memory_order_release);
}

void VcpuTime::sample(unsigned vcpu) {
  PerVcpu& clock = vcpus_[vcpu];
  clock.cpu_ns.store(thread_cpu_ns(), std::memory_order_relaxed);
  clock.samples.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t VcpuTime::samples(unsigned vcpu) const {
  return vcpus_[vcpu].samples.load(std::memory_order_relaxed);
}

std::uint64_t VcpuTime::now_ns() {
  std::uint64_t total = 0;
  for (unsigned v = 0; v < count_; ++v) {
    const PerVcpu& clock = vcpus_[v];
    if (!clock.started.load(std::memory_order_acquire)) continue;
    total += clock.cpu_ns.load(std::memory_order_relaxed) -
             clock.base_ns.load(std::memory_order_relaxed);
  }
  return total;
}

}  // namespace drvm::vmm::session
