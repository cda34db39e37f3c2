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
  if (held_.load(std::memory_order_acquire)) return held_at_.load(std::memory_order_relaxed);
  return summed() - left_out_.load(std::memory_order_acquire);
}

void VcpuTime::hold() {
  if (held_.load(std::memory_order_relaxed)) return;
  held_at_.store(now_ns(), std::memory_order_relaxed);
  held_.store(true, std::memory_order_release);
}

void VcpuTime::go_on() {
  if (!held_.load(std::memory_order_relaxed)) return;
  // From here on the clock reads on from where it was held.
  left_out_.store(summed() - held_at_.load(std::memory_order_relaxed), std::memory_order_release);
  held_.store(false, std::memory_order_release);
}

std::uint64_t VcpuTime::summed() const {
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
