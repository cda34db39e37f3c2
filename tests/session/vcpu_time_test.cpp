// VcpuTime, the counting session's clock: the summed CPU time of the vCPU threads that started,
// each as of its latest sample, never going back.
#include "vmm/session/vcpu_time.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace drvm::vmm::session {
namespace {

// Spends `ms` of this thread's CPU time (however loaded the host is).
void burn(int ms) {
  const std::uint64_t until = thread_cpu_ns() + static_cast<std::uint64_t>(ms) * 1'000'000;
  while (thread_cpu_ns() < until) {
  }
}

TEST(VcpuTime, StandsStillUntilAVcpuStartsAndBetweenSamples) {
  VcpuTime clock(2);
  burn(5);
  EXPECT_EQ(clock.now_ns(), 0u);
  clock.start(0);
  burn(20);
  EXPECT_EQ(clock.now_ns(), 0u);  // no sample yet
  clock.sample(0);
  const std::uint64_t sampled = clock.now_ns();
  EXPECT_GE(sampled, 20'000'000u);  // the 20 ms of CPU spent since start()
  burn(5);
  EXPECT_EQ(clock.now_ns(), sampled);
  EXPECT_EQ(clock.samples(0), 1u);
  EXPECT_EQ(clock.samples(1), 0u);
}

TEST(VcpuTime, SumsTheVcpusOwnThreads) {
  VcpuTime clock(2);
  clock.start(0);
  std::thread other([&] {
    clock.start(1);
    burn(30);
    clock.sample(1);
  });
  other.join();
  // vCPU 0's thread (this one) only waited meanwhile: the total is mostly vCPU 1's.
  clock.sample(0);
  const std::uint64_t total = clock.now_ns();
  EXPECT_GE(total, 30'000'000u);
  EXPECT_LT(total, 200'000'000u);
  clock.start(1);  // a second start() changes nothing
  EXPECT_EQ(clock.now_ns(), total);
}

// What ran while the clock was held (reverse execution's replays) never counts, and the clock
// goes on from where it stood.
TEST(VcpuTime, TimeWhileHeldIsLeftOut) {
  VcpuTime clock(1);
  clock.start(0);
  burn(10);
  clock.sample(0);
  const std::uint64_t before = clock.now_ns();
  clock.hold();
  burn(30);
  clock.sample(0);
  EXPECT_EQ(clock.now_ns(), before);
  clock.go_on();
  EXPECT_EQ(clock.now_ns(), before);
  burn(10);
  clock.sample(0);
  const std::uint64_t after = clock.now_ns();
  EXPECT_GE(after, before + 10'000'000u);
  EXPECT_LT(after, before + 30'000'000u);  // the 30 ms held are not in it
}

}  // namespace
}  // namespace drvm::vmm::session
