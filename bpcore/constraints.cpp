#include "bpcore/constraints.hpp"

#include <algorithm>
#include <cassert>
#include <stdexcept>

namespace drvm::bp {

void SlotConstraints::Histogram::move(std::uint32_t from, std::uint32_t to) {
  if (from == to) return;
  if (from > 0) {
    assert(count_[from] > 0);
    --count_[from];
  }
  if (to > 0) ++count_[to];
}

std::uint32_t SlotConstraints::Histogram::max() const {
  for (std::uint32_t k = static_cast<std::uint32_t>(count_.size()) - 1; k > 0; --k) {
    if (count_[k] > 0) return k;
  }
  return 0;
}

SlotConstraints::SlotConstraints(const SlotLayout& layout, std::uint32_t vcpus)
    : layout_(layout), vcpus_(vcpus) {
  if (!layout.valid() || vcpus == 0) {
    throw std::invalid_argument("SlotConstraints: need 1..64 slots per pool and >= 1 vCPU");
  }
  pools_.resize(layout.pool_count());
  for (PoolIndex p = 0; p < layout.pool_count(); ++p) {
    const std::uint32_t size = layout.pool_size(p);
    PoolState& pool = pools_[p];
    pool.vcpu_pinned.assign(vcpus, 0);
    pool.guest_pinned.assign(vcpus, 0);
    pool.vcpu_hist.init(size);
    pool.target_all_hist.init(size);
    pool.target_vcpu_hist.resize(vcpus);
    for (Histogram& h : pool.target_vcpu_hist) h.init(size);
  }
}

const SlotConstraints::TargetPool* SlotConstraints::find_target(TargetId target,
                                                                PoolIndex pool) const {
  const auto it = targets_.find(target);
  return it == targets_.end() ? nullptr : &it->second[pool];
}

std::uint32_t SlotConstraints::vcpu_pinned(VcpuId vcpu, PoolIndex pool) const {
  return pools_[pool].vcpu_pinned[vcpu];
}

std::uint32_t SlotConstraints::target_pinned(TargetId target, VcpuId vcpu, PoolIndex pool) const {
  if (target == kGuestTarget) return pools_[pool].guest_pinned[vcpu];
  const TargetPool* tp = find_target(target, pool);
  return tp ? tp->on(vcpu) : 0;
}

std::uint32_t SlotConstraints::max_pinned(const Binding& binding, PoolIndex pool) const {
  const PoolState& ps = pools_[pool];
  if (binding.is_guest()) {
    if (binding.vcpu != kAllVcpus) return ps.guest_pinned[binding.vcpu];
    return *std::max_element(ps.guest_pinned.begin(), ps.guest_pinned.end());
  }
  if (binding.scope == Scope::kVcpu) {
    const VcpuId v = binding.vcpu;
    return ps.vcpu_pinned[v] + std::max(ps.target_all_hist.max(), ps.target_vcpu_hist[v].max());
  }
  const TargetPool* tp = find_target(binding.target, pool);
  if (binding.vcpu != kAllVcpus) {
    return ps.vcpu_pinned[binding.vcpu] + (tp ? tp->on(binding.vcpu) : 0);
  }
  if (!tp || tp->single_events == 0) {
    // Fast path: the target needs the same slots on every vCPU.
    return (tp ? tp->all_weight : 0) + ps.vcpu_hist.max();
  }
  std::uint32_t worst = 0;
  for (VcpuId v = 0; v < vcpus_; ++v) worst = std::max(worst, ps.vcpu_pinned[v] + tp->on(v));
  return worst;
}

Result<void> SlotConstraints::check(const Binding& binding, PoolIndex pool,
                                    std::uint32_t weight) const {
  const bool all = binding.vcpu == kAllVcpus;
  if ((all && binding.scope == Scope::kVcpu) || (!all && binding.vcpu >= vcpus_)) {
    return Error::kBadVcpu;
  }
  const std::uint32_t size = binding.is_guest() ? kGuestSlots : layout_.pool_size(pool);
  if (weight == 0 || weight > size) return Error::kBadWeight;
  if (max_pinned(binding, pool) + weight > size) return Error::kNoSpace;
  return {};
}

Result<void> SlotConstraints::reserve(const Binding& binding, PoolIndex pool,
                                      std::uint32_t weight) {
  if (auto ok = check(binding, pool, weight); !ok) return ok;
  toggle(binding, pool, weight, true);
  return {};
}

void SlotConstraints::release(const Binding& binding, PoolIndex pool, std::uint32_t weight) {
  toggle(binding, pool, weight, false);
}

Result<void> SlotConstraints::modify(const Binding& binding, PoolIndex old_pool, PoolIndex new_pool,
                                     std::uint32_t weight) {
  if (old_pool == new_pool) return {};
  release(binding, old_pool, weight);
  if (auto ok = reserve(binding, new_pool, weight); !ok) {
    // Cannot fail: the same slots were free a moment ago.
    [[maybe_unused]] const auto restored = reserve(binding, old_pool, weight);
    assert(restored.ok());
    return ok;
  }
  return {};
}

void SlotConstraints::toggle(const Binding& binding, PoolIndex pool, std::uint32_t weight,
                             bool add) {
  if (binding.is_guest()) {
    toggle_guest(binding, pool, weight, add);
    return;
  }
  if (binding.scope == Scope::kTarget) {
    toggle_target(binding, pool, weight, add);
    return;
  }
  PoolState& ps = pools_[pool];
  std::uint32_t& pinned = ps.vcpu_pinned[binding.vcpu];
  const std::uint32_t next = add ? pinned + weight : pinned - weight;
  ps.vcpu_hist.move(pinned, next);
  pinned = next;
}

void SlotConstraints::toggle_guest(const Binding& binding, PoolIndex pool, std::uint32_t weight,
                                   bool add) {
  for (VcpuId v = 0; v < vcpus_; ++v) {
    if (!binding.applies_to(v)) continue;
    std::uint32_t& pinned = pools_[pool].guest_pinned[v];
    pinned = add ? pinned + weight : pinned - weight;
  }
}

void SlotConstraints::toggle_target(const Binding& binding, PoolIndex pool, std::uint32_t weight,
                                    bool add) {
  PoolState& ps = pools_[pool];
  TargetPool& tp = targets_[binding.target][pool];
  const bool was_single = tp.single_events > 0;
  const auto apply = [&](std::uint32_t& value) { value = add ? value + weight : value - weight; };

  if (binding.vcpu == kAllVcpus) {
    const std::uint32_t old_all = tp.all_weight;
    apply(tp.all_weight);
    if (!was_single) {
      ps.target_all_hist.move(old_all, tp.all_weight);
    } else {
      for (VcpuId v = 0; v < vcpus_; ++v) {
        ps.target_vcpu_hist[v].move(old_all + tp.single_weight[v],
                                    tp.all_weight + tp.single_weight[v]);
      }
    }
    return;
  }

  const VcpuId vcpu = binding.vcpu;
  if (tp.single_weight.empty()) tp.single_weight.assign(vcpus_, 0);
  const std::uint32_t old_on = tp.all_weight + tp.single_weight[vcpu];
  apply(tp.single_weight[vcpu]);
  tp.single_events = add ? tp.single_events + 1 : tp.single_events - 1;
  const bool now_single = tp.single_events > 0;

  if (was_single && now_single) {
    ps.target_vcpu_hist[vcpu].move(old_on, tp.on(vcpu));
  } else if (!was_single && now_single) {
    // First single-vCPU event: account the target per vCPU from now on.
    ps.target_all_hist.move(tp.all_weight, 0);
    for (VcpuId v = 0; v < vcpus_; ++v) ps.target_vcpu_hist[v].move(0, tp.on(v));
  } else if (was_single && !now_single) {
    // Last single-vCPU event gone: back to the global histogram.
    for (VcpuId v = 0; v < vcpus_; ++v) {
      const std::uint32_t before = v == vcpu ? old_on : tp.all_weight + tp.single_weight[v];
      ps.target_vcpu_hist[v].move(before, 0);
    }
    ps.target_all_hist.move(0, tp.all_weight);
  }
}

}  // namespace drvm::bp
