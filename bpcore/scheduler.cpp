// BreakpointManager: placing a vCPU's enabled events onto its slots.
#include <algorithm>
#include <array>
#include <bit>

#include "bpcore/manager.hpp"

namespace drvm::bp {
namespace {

std::uint64_t pool_mask(const SlotLayout& layout, PoolIndex pool) {
  const std::uint32_t size = layout.pool_size(pool);
  const std::uint64_t bits = size >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << size) - 1;
  return bits << layout.first_slot(pool);
}

}  // namespace

bool BreakpointManager::needs_schedule(VcpuId vcpu) const {
  const VcpuState& vs = vcpus_[vcpu];
  return vs.dirty || vs.seen_global != global_changes_;
}

const EffectiveSet& BreakpointManager::schedule(VcpuId vcpu) {
  VcpuState& vs = vcpus_[vcpu];
  if (!needs_schedule(vcpu)) return vs.effective;
  const std::uint64_t now = clock_->now_ns();
  collect(vcpu);
  place(vs, now);
  assign_slots(vs, now);
  vs.dirty = false;
  vs.seen_global = global_changes_;  // after place(): its kError changes do not concern us
  return vs.effective;
}

bool BreakpointManager::rotate(VcpuId vcpu) {
  VcpuState& vs = vcpus_[vcpu];
  schedule(vcpu);
  if (!vs.rotation_pending) return false;
  vs.rotation.turn();
  vs.dirty = true;
  schedule(vcpu);
  return true;
}

void BreakpointManager::collect(VcpuId vcpu) {
  pinned_.clear();
  flexible_.clear();
  const auto consider = [&](std::uint32_t index) {
    const Record& r = records_[index];
    if (r.state != EventState::kInactive && r.state != EventState::kActive) return;
    (r.spec.pinned ? pinned_ : flexible_).push_back(index);
  };
  for (std::uint32_t index : vcpus_[vcpu].events) consider(index);
  for (std::uint32_t index : all_vcpu_events_) consider(index);
  // The guest first (its DRs are what counts while it runs), then vCPU-bound before
  // target-bound (perf: CPU context before task context), then creation order.
  const auto rank = [&](const Record& r) {
    return r.spec.binding.is_guest() ? 0 : r.spec.binding.scope == Scope::kVcpu ? 1 : 2;
  };
  std::sort(pinned_.begin(), pinned_.end(), [&](std::uint32_t a, std::uint32_t b) {
    const Record& ra = records_[a];
    const Record& rb = records_[b];
    return rank(ra) != rank(rb) ? rank(ra) < rank(rb) : ra.serial < rb.serial;
  });
  std::sort(flexible_.begin(), flexible_.end(), [&](std::uint32_t a, std::uint32_t b) {
    const Record& ra = records_[a];
    const Record& rb = records_[b];
    const bool ga = ra.spec.binding.is_guest();
    const bool gb = rb.spec.binding.is_guest();
    return ga != gb ? ga : ra.serial < rb.serial;
  });
}

void BreakpointManager::place(VcpuState& vs, std::uint64_t now) {
  ++sched_epoch_;
  chosen_.clear();
  // The host's slots and the guest's are counted apart, so the host can never take the guest's.
  const SlotLayout& host = host_layout();
  std::array<std::uint32_t, 2> free{host.pool_size(0),
                                    host.pool_count() > 1 ? host.pool_size(1) : 0};
  std::array<std::uint32_t, 2> guest_free{kGuestSlots, kGuestSlots};
  bool guest_placed = false;
  // Exclusive rule: an exclusive event never shares the slots with another owner's events.
  bool any = false;
  bool several_owners = false;
  TargetId owner = 0;
  bool exclusive = false;
  TargetId exclusive_owner = 0;

  const auto room = [&](const Record& r) -> std::uint32_t& {
    return r.spec.binding.is_guest() ? guest_free[r.pool] : free[r.pool];
  };
  // Why `r` cannot be placed now (kNone: it can).
  const auto refusal = [&](Record& r) {
    const TargetId o = r.spec.binding.target;
    if (room(r) < r.spec.weight) return PlaceError::kNoSlot;
    if (exclusive && o != exclusive_owner) return PlaceError::kExclusive;
    if (r.spec.exclusive && any && (several_owners || owner != o)) return PlaceError::kExclusive;
    return PlaceError::kNone;
  };
  const auto take = [&](std::uint32_t index) {
    Record& r = records_[index];
    const TargetId o = r.spec.binding.target;
    room(r) -= r.spec.weight;
    if (r.spec.binding.is_guest()) guest_placed = true;
    r.place_error = PlaceError::kNone;
    if (!any) {
      any = true;
      owner = o;
    } else if (owner != o) {
      several_owners = true;
    }
    if (r.spec.exclusive) {
      exclusive = true;
      exclusive_owner = o;
    }
    r.chosen_mark = sched_epoch_;
    r.slots_left = r.spec.weight;
    chosen_.push_back(index);
  };

  for (std::uint32_t index : pinned_) {
    Record& r = records_[index];
    const PlaceError why = refusal(r);
    if (why == PlaceError::kNone) {
      take(index);
    } else {
      set_state(r, EventState::kError, now);
      r.place_error = why;
      r.last_error = why;
      // The guest's events are placed first and never refused, so an exclusive conflict seen
      // with them placed is theirs: the event comes back when the guest disarms.
      r.blocked_by_guest = why == PlaceError::kExclusive && guest_placed;
      if (r.spec.binding.vcpu == kAllVcpus) ++global_changes_;  // other vCPUs drop it
    }
  }
  vs.rotation_pending = false;
  const std::size_t n = flexible_.size();
  const std::size_t start = vs.rotation.head(n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::uint32_t index = flexible_[(start + k) % n];
    Record& r = records_[index];
    const PlaceError why = refusal(r);
    if (why == PlaceError::kNone) {
      take(index);
    } else {
      r.place_error = why;
      vs.rotation_pending = true;
    }
  }
}

void BreakpointManager::assign_slots(VcpuState& vs, std::uint64_t now) {
  EffectiveSet& eff = vs.effective;
  const std::array<EventId, kMaxSlots> old_events = eff.slot_event;
  const std::uint64_t old_used = eff.used_mask;

  std::array<EventId, kMaxSlots> slots{};
  std::uint64_t used = 0;
  for (std::uint64_t m = old_used; m; m &= m - 1) {
    if (Record* r = find(old_events[static_cast<unsigned>(std::countr_zero(m))])) {
      r->seen_mark = sched_epoch_;
    }
  }
  // The guest's events first, so they always get the lowest slots (DR0-DR3, the hardware ones)
  // and a host event that sat there moves. Events that stay keep their slots (modify() without
  // losing the slot, stable DR numbers); newcomers take the lowest free slots of their pool.
  for (const bool guest_pass : {true, false}) {
    for (std::uint64_t m = old_used; m; m &= m - 1) {
      const unsigned s = static_cast<unsigned>(std::countr_zero(m));
      Record* r = find(old_events[s]);
      if (!r || r->spec.binding.is_guest() != guest_pass || (used >> s & 1)) continue;
      if (r->chosen_mark == sched_epoch_ && r->slots_left > 0 &&
          (pool_mask(layout(), r->pool) >> s & 1)) {
        slots[s] = old_events[s];
        used |= std::uint64_t{1} << s;
        --r->slots_left;
      }
    }
    for (std::uint32_t index : chosen_) {
      Record& r = records_[index];
      if (r.spec.binding.is_guest() != guest_pass) continue;
      const std::uint64_t pool_bits = pool_mask(layout(), r.pool);
      for (; r.slots_left > 0; --r.slots_left) {
        const unsigned s = static_cast<unsigned>(std::countr_zero(pool_bits & ~used));
        slots[s] = EventId{index, r.generation};
        used |= std::uint64_t{1} << s;
      }
      if (r.seen_mark != sched_epoch_) ++r.placements;
      if (r.state == EventState::kInactive) set_state(r, EventState::kActive, now);
    }
  }
  // Events that left this vCPU.
  for (std::uint64_t m = old_used; m; m &= m - 1) {
    Record* r = find(old_events[static_cast<unsigned>(std::countr_zero(m))]);
    if (!r || r->seen_mark != sched_epoch_ || r->chosen_mark == sched_epoch_) continue;
    r->seen_mark = 0;  // once per event, whatever its weight
    if (--r->placements == 0 && r->state == EventState::kActive) {
      set_state(*r, EventState::kInactive, now);
    }
  }

  EffectiveSet next;
  next.slot_event = slots;
  next.used_mask = used;
  for (std::uint64_t m = used; m; m &= m - 1) {
    const unsigned s = static_cast<unsigned>(std::countr_zero(m));
    const BpAttr& attr = records_[slots[s].index].spec.attr;
    next.slot_attr[s] = attr;
    if (needs_read_filter(attr.type)) next.read_filter_mask |= std::uint64_t{1} << s;
    if (s < kX86HardwareSlots) {
      next.dr[s] = attr.addr;
      next.dr7 |= encode_dr7_slot(s, attr);
    }
  }
  if (next.dr7) next.dr7 |= dr7::kGe;
  const bool changed = next.dr != eff.dr || next.dr7 != eff.dr7 ||
                       next.slot_event != eff.slot_event || next.slot_attr != eff.slot_attr;
  next.generation = eff.generation + (changed ? 1 : 0);
  eff = next;
}

}  // namespace drvm::bp
