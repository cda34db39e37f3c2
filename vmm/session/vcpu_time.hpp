// vCPU time: the CPU time of the vCPU threads, each from its first entry into the guest, summed
// over the vCPUs, as perf's task-clock counts a task's own time. It is the counting session's
// clock: its multiplexing ticks on it and the breakpoint manager keeps the events' time enabled
// and time running on it (through bp::Clock), so neither setup nor a loaded host looks like guest
// progress. Each vCPU samples its own thread (at its exits); any thread may read.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "bpcore/clock.hpp"

namespace drvm::vmm::session {

// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), in nanoseconds.
std::uint64_t thread_cpu_ns();

class VcpuTime final : public bp::Clock {
 public:
  explicit VcpuTime(unsigned vcpus);

  // On `vcpu`'s thread, before each entry: the first call starts its time.
  void start(unsigned vcpu);
  // On `vcpu`'s thread, at an exit or an interruption: its time so far.
  void sample(unsigned vcpu);
  // Exits and interruptions `vcpu` has sampled (a vCPU whose count stays put is not exiting).
  std::uint64_t samples(unsigned vcpu) const;
  // The summed time of the vCPUs that started, as of their latest samples, less the time held.
  std::uint64_t now_ns() override;
  // Stops the clock until go_on(), and the time in between never counts: gdb's reverse execution
  // replays what already ran, which is not guest progress. Any thread, the vCPUs stopped.
  void hold();
  void go_on();

 private:
  std::uint64_t summed() const;

  struct PerVcpu {
    std::atomic<bool> started{false};
    std::atomic<std::uint64_t> base_ns{0};  // its thread's CPU time at start()
    std::atomic<std::uint64_t> cpu_ns{0};   // at its latest sample()
    std::atomic<std::uint64_t> samples{0};
  };
  unsigned count_;
  std::unique_ptr<PerVcpu[]> vcpus_;
  std::atomic<bool> held_{false};
  std::atomic<std::uint64_t> held_at_{0};   // now_ns() while held
  std::atomic<std::uint64_t> left_out_{0};  // summed time that was held
};

}  // namespace drvm::vmm::session
