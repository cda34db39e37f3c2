#include "bpcore/clock.hpp"

#include <chrono>

namespace drvm::bp {

std::uint64_t SteadyClock::now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace drvm::bp
