// Rotation of flexible events: the budget the pinned ones leave.
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

}  // namespace drvm::bp
