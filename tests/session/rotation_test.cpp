// The multiplexing window: capacity events at a time, sliding by one per tick, so every event is
// in the window for the same share of the ticks.
#include "vmm/session/rotation.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace drvm::vmm::session {
namespace {

TEST(RotationSchedule, NoRotationWhenEverythingFits) {
  const RotationSchedule fits(4, 4);
  EXPECT_FALSE(fits.rotates());
  for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(fits.enabled(i));
  const RotationSchedule no_room(3, 0);
  EXPECT_FALSE(no_room.rotates());
}

TEST(RotationSchedule, WindowSlidesByOneEvent) {
  RotationSchedule schedule(5, 2);
  ASSERT_TRUE(schedule.rotates());
  EXPECT_TRUE(schedule.enabled(0));
  EXPECT_TRUE(schedule.enabled(1));
  EXPECT_FALSE(schedule.enabled(2));
  const RotationSchedule::Step first = schedule.next();
  EXPECT_EQ(first.disable, 0u);
  EXPECT_EQ(first.enable, 2u);
  EXPECT_FALSE(schedule.enabled(0));
  EXPECT_TRUE(schedule.enabled(1));
  EXPECT_TRUE(schedule.enabled(2));
  schedule.next();
  schedule.next();
  const RotationSchedule::Step wrap = schedule.next();  // window 3,4 -> 4,0
  EXPECT_EQ(wrap.disable, 3u);
  EXPECT_EQ(wrap.enable, 0u);
  EXPECT_TRUE(schedule.enabled(4));
  EXPECT_TRUE(schedule.enabled(0));
}

TEST(RotationSchedule, EveryEventGetsCapacityOutOfEveryNTicks) {
  for (std::size_t events = 2; events <= 9; ++events) {
    for (std::size_t capacity = 1; capacity < events; ++capacity) {
      RotationSchedule schedule(events, capacity);
      std::vector<std::size_t> ticks_in(events, 0);
      for (std::size_t tick = 0; tick < events * 3; ++tick) {
        std::size_t enabled = 0;
        for (std::size_t e = 0; e < events; ++e) {
          if (schedule.enabled(e)) {
            ++ticks_in[e];
            ++enabled;
          }
        }
        ASSERT_EQ(enabled, capacity);
        const RotationSchedule::Step step = schedule.next();
        ASSERT_NE(step.disable, step.enable);
      }
      for (std::size_t e = 0; e < events; ++e) EXPECT_EQ(ticks_in[e], capacity * 3);
    }
  }
}

}  // namespace
}  // namespace drvm::vmm::session
