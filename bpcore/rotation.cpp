// Rotation of flexible events: the pinned budget and the Multiplexer.
#include "bpcore/rotation.hpp"

#include "bpcore/constraints.hpp"

namespace drvm::bp {

std::uint32_t flexible_budget(const SlotLayout& host, std::uint32_t vcpus, TargetId owner,
                              PoolIndex pool, std::span<const EventSpec> pinned) {
  SlotConstraints constraints(host, vcpus);
  for (const EventSpec& spec : pinned) {
    (void)constraints.reserve(spec.binding, host.pool_of(spec.attr.type), spec.weight);
  }
  const std::uint32_t taken = constraints.max_pinned(Binding::target_all(owner), pool);
  const std::uint32_t size = host.pool_size(pool);
  return size > taken ? size - taken : 0;
}

Multiplexer::Multiplexer(std::size_t events, std::uint32_t capacity, std::uint64_t interval_ns)
    : events_(events), capacity_(capacity), interval_ns_(interval_ns), running_(events, 0) {}

bool Multiplexer::holds_slots(std::size_t event) const {
  return !rotates() || (event + events_ - ring_.head(events_)) % events_ < capacity_;
}

std::optional<Multiplexer::Step> Multiplexer::tick(std::uint64_t now) {
  if (!rotates() || now - last_tick_ < interval_ns_) return std::nullopt;
  for (std::size_t event = 0; event < events_; ++event) {
    if (holds_slots(event)) running_[event] += now - last_tick_;
  }
  last_tick_ = now;
  const std::size_t head = ring_.head(events_);
  ring_.turn();
  return Step{head, (head + capacity_) % events_};
}

Multiplexer::Times Multiplexer::times(std::size_t event, std::uint64_t now) const {
  if (!rotates()) return {now, now};
  return {now, running_[event] + (holds_slots(event) ? now - last_tick_ : 0)};
}

}  // namespace drvm::bp
