// Slot constraints: decides whether a pinned breakpoint can be reserved, with the rules of
// Linux's hw_breakpoint layer mapped onto vCPUs and targets (see docs/bpcore.md).
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "bpcore/result.hpp"
#include "bpcore/slot_layout.hpp"
#include "bpcore/types.hpp"

namespace drvm::bp {

/// Bookkeeping of pinned slot reservations, per pool.
///
/// Rule for host events: on every vCPU v, (weight of vCPU-bound events on v) + (the largest
/// weight any single host target has on v) must not exceed the pool size. Targets do not
/// compete with each other (as tasks in Linux, each is accounted as if it were alone on the
/// vCPU), vCPU-bound events compete with every host event on their vCPU.
///
/// The guest (kGuestTarget) is accounted apart: it has kGuestSlots per pool on every vCPU on top
/// of the layout's slots, and host events never count against them (nor it against theirs).
///
/// Cost: reserving a target event bound to all vCPUs, for a target with no single-vCPU events,
/// is O(pool size) whatever the number of events (the kernel's fast path). Other requests cost
/// O(pool size) or O(vCPUs); switching a target between the two accounting modes is O(vCPUs).
class SlotConstraints {
 public:
  /// `layout` is the host's slots; the guest's kGuestSlots per pool come on top.
  SlotConstraints(const SlotLayout& layout, std::uint32_t vcpus);

  /// Reserves `weight` slots of `pool` for an event with `binding`; on error nothing changes.
  /// Errors: kBadVcpu, kBadWeight, kNoSpace.
  Result<void> reserve(const Binding& binding, PoolIndex pool, std::uint32_t weight);
  /// Releases a reservation made with exactly these arguments.
  void release(const Binding& binding, PoolIndex pool, std::uint32_t weight);
  /// Moves a reservation to another pool (release, then reserve); on kNoSpace the old
  /// reservation is restored and nothing changes.
  Result<void> modify(const Binding& binding, PoolIndex old_pool, PoolIndex new_pool,
                      std::uint32_t weight);

  /// The slots already taken, as the reserve rule sees them, for an event with `binding` on the
  /// worst vCPU it applies to; reserve succeeds iff this plus the weight fits the pool.
  std::uint32_t max_pinned(const Binding& binding, PoolIndex pool) const;
  /// Weight of vCPU-bound reservations on `vcpu`.
  std::uint32_t vcpu_pinned(VcpuId vcpu, PoolIndex pool) const;
  /// Weight of `target`'s reservations that apply to `vcpu` (kGuestTarget: the guest's).
  std::uint32_t target_pinned(TargetId target, VcpuId vcpu, PoolIndex pool) const;

  const SlotLayout& layout() const { return layout_; }
  std::uint32_t vcpus() const { return vcpus_; }

 private:
  // count[k] = how many vCPUs (or targets) use exactly k slots; k = 1 .. pool size.
  class Histogram {
   public:
    void init(std::uint32_t size) { count_.assign(size + 1, 0); }
    void move(std::uint32_t from, std::uint32_t to);
    std::uint32_t max() const;

   private:
    std::vector<std::uint32_t> count_;
  };
  struct PoolState {
    std::vector<std::uint32_t> vcpu_pinned;   // per vCPU
    Histogram vcpu_hist;                      // of vcpu_pinned over vCPUs
    Histogram target_all_hist;                // targets with only all-vCPU events
    std::vector<Histogram> target_vcpu_hist;  // per vCPU: targets with single-vCPU events
    std::vector<std::uint32_t> guest_pinned;  // per vCPU: the guest's weight (own slots)
  };
  struct TargetPool {
    std::uint32_t all_weight = 0;              // events on all vCPUs
    std::uint32_t single_events = 0;           // events on one vCPU
    std::vector<std::uint32_t> single_weight;  // per vCPU; sized on the first single event
    std::uint32_t on(VcpuId v) const { return all_weight + (single_events ? single_weight[v] : 0); }
  };

  Result<void> check(const Binding& binding, PoolIndex pool, std::uint32_t weight) const;
  void toggle(const Binding& binding, PoolIndex pool, std::uint32_t weight, bool add);
  void toggle_guest(const Binding& binding, PoolIndex pool, std::uint32_t weight, bool add);
  void toggle_target(const Binding& binding, PoolIndex pool, std::uint32_t weight, bool add);
  const TargetPool* find_target(TargetId target, PoolIndex pool) const;

  SlotLayout layout_;
  std::uint32_t vcpus_;
  std::vector<PoolState> pools_;
  std::unordered_map<TargetId, std::array<TargetPool, 2>> targets_;  // one TargetPool per pool
};

}  // namespace drvm::bp
