// BreakpointManager: event lifecycle, states and time accounting.
#include "bpcore/manager.hpp"

#include <stdexcept>

namespace drvm::bp {
namespace {

// The slots of `pool` an event may use: the guest's own, or the host's.
std::uint32_t budget_of(const SlotLayout& host, const Binding& binding, PoolIndex pool) {
  return binding.is_guest() ? kGuestSlots : host.pool_size(pool);
}

}  // namespace

BreakpointManager::BreakpointManager(const ManagerConfig& config, Clock* clock)
    : own_clock_(clock ? nullptr : std::make_unique<SteadyClock>()),
      clock_(clock ? clock : own_clock_.get()),
      constraints_(config.layout, config.vcpus),
      layout_(config.layout.with_guest_slots(kGuestSlots)),
      vcpus_(config.vcpus) {
  if (!layout_.valid()) {
    throw std::invalid_argument(
        "BreakpointManager: the host's slots plus the guest's 4 per pool "
        "exceed 64 slots");
  }
  for (VcpuId v = 0; v < config.vcpus; ++v) {
    vcpus_[v].guest = std::make_unique<GuestDrFile>(*this, v);
  }
}

BreakpointManager::~BreakpointManager() = default;

void BreakpointManager::set_clock(Clock* clock) {
  const std::uint64_t before = clock_->now_ns();
  for (Record& r : records_) {
    if (r.live) account(r, before);
  }
  if (clock == nullptr) {
    if (!own_clock_) own_clock_ = std::make_unique<SteadyClock>();
    clock = own_clock_.get();
  }
  clock_ = clock;
  const std::uint64_t after = clock_->now_ns();
  for (Record& r : records_) {
    if (r.live) r.stamp = after;
  }
}

BreakpointManager::Record* BreakpointManager::find(EventId id) {
  if (id.index >= records_.size()) return nullptr;
  Record& r = records_[id.index];
  return r.live && r.generation == id.generation ? &r : nullptr;
}

const BreakpointManager::Record* BreakpointManager::find(EventId id) const {
  return const_cast<BreakpointManager*>(this)->find(id);
}

std::vector<std::uint32_t>& BreakpointManager::list_of(const Record& r) {
  const VcpuId v = r.spec.binding.vcpu;
  return v == kAllVcpus ? all_vcpu_events_ : vcpus_[v].events;
}

void BreakpointManager::mark_dirty(const Record& r) {
  const VcpuId v = r.spec.binding.vcpu;
  if (v == kAllVcpus) {
    ++global_changes_;
  } else {
    vcpus_[v].dirty = true;
  }
}

void BreakpointManager::account(Record& r, std::uint64_t now) {
  const std::uint64_t delta = now - r.stamp;
  if (r.state == EventState::kInactive || r.state == EventState::kActive) r.time_enabled += delta;
  if (r.state == EventState::kActive) r.time_running += delta;
  if (r.state == EventState::kError) r.time_error += delta;
  r.stamp = now;
}

void BreakpointManager::set_state(Record& r, EventState state, std::uint64_t now) {
  account(r, now);
  if (state == EventState::kError && r.state != EventState::kError) ++r.errors;
  if (state != EventState::kError) r.blocked_by_guest = false;
  r.state = state;
}

std::uint32_t BreakpointManager::budget(const Record& r) const {
  return budget_of(host_layout(), r.spec.binding, r.pool);
}

Result<EventId> BreakpointManager::create(const EventSpec& spec) {
  if (auto valid = validate(spec.attr); !valid) return valid.error();
  const Binding& b = spec.binding;
  const bool all = b.vcpu == kAllVcpus;
  if ((all && b.scope == Scope::kVcpu) || (!all && b.vcpu >= vcpus())) return Error::kBadVcpu;
  const PoolIndex pool = layout().pool_of(spec.attr.type);
  if (spec.weight == 0 || spec.weight > budget_of(host_layout(), b, pool)) {
    return Error::kBadWeight;
  }
  if (spec.pinned) {
    if (auto reserved = constraints_.reserve(b, pool, spec.weight); !reserved) {
      return reserved.error();
    }
  }

  std::uint32_t index;
  if (free_records_.empty()) {
    index = static_cast<std::uint32_t>(records_.size());
    records_.emplace_back();
  } else {
    index = free_records_.back();
    free_records_.pop_back();
  }
  Record& r = records_[index];
  r.spec = spec;
  r.pool = pool;
  r.live = true;
  r.state = spec.disabled ? EventState::kOff : EventState::kInactive;
  r.guest_slot = kNoGuestSlot;
  r.place_error = PlaceError::kNone;
  r.last_error = PlaceError::kNone;
  r.blocked_by_guest = false;
  r.serial = next_serial_++;
  r.count = 0;
  r.period_left = spec.sample_period;
  r.time_enabled = 0;
  r.time_running = 0;
  r.time_error = 0;
  r.errors = 0;
  r.stamp = clock_->now_ns();
  r.placements = 0;
  auto& list = list_of(r);
  r.list_pos = static_cast<std::uint32_t>(list.size());
  list.push_back(index);
  mark_dirty(r);
  return EventId{index, r.generation};
}

Result<void> BreakpointManager::destroy(EventId id) {
  Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  if (r->spec.pinned) constraints_.release(r->spec.binding, r->pool, r->spec.weight);
  auto& list = list_of(*r);
  const std::uint32_t moved = list.back();
  list[r->list_pos] = moved;
  records_[moved].list_pos = r->list_pos;
  list.pop_back();
  mark_dirty(*r);
  r->live = false;
  ++r->generation;  // stale ids (and stale slot maps) no longer resolve
  r->spec.on_overflow = {};
  free_records_.push_back(id.index);
  return {};
}

Result<void> BreakpointManager::enable(EventId id) {
  Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  if (r->state == EventState::kOff || r->state == EventState::kError) {
    set_state(*r, EventState::kInactive, clock_->now_ns());
    mark_dirty(*r);
  }
  return {};
}

Result<void> BreakpointManager::disable(EventId id) {
  Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  if (r->state != EventState::kOff) {
    set_state(*r, EventState::kOff, clock_->now_ns());
    mark_dirty(*r);
  }
  return {};
}

Result<void> BreakpointManager::modify(EventId id, const BpAttr& attr) {
  Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  if (auto valid = validate(attr); !valid) return valid.error();
  const PoolIndex pool = layout().pool_of(attr.type);
  if (r->spec.weight > budget_of(host_layout(), r->spec.binding, pool)) return Error::kBadWeight;
  if (r->spec.pinned) {
    if (auto moved = constraints_.modify(r->spec.binding, r->pool, pool, r->spec.weight); !moved) {
      return moved;
    }
  }
  r->spec.attr = attr;
  r->pool = pool;
  mark_dirty(*r);
  return {};
}

Result<EventReading> BreakpointManager::read(EventId id) {
  Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  Record snapshot = *r;
  account(snapshot, clock_->now_ns());
  return EventReading{snapshot.count,      snapshot.time_enabled, snapshot.time_running,
                      snapshot.time_error, snapshot.errors,       snapshot.last_error};
}

Result<EventState> BreakpointManager::state(EventId id) const {
  const Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  return r->state;
}

Result<EventState> BreakpointManager::placed_state(EventId id) {
  const Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  for (VcpuId v = 0; v < vcpus(); ++v) {
    if (r->spec.binding.applies_to(v)) schedule(v);
  }
  return r->state;
}

Result<PlaceError> BreakpointManager::place_error(EventId id) const {
  const Record* r = find(id);
  if (!r) return Error::kUnknownEvent;
  return r->place_error;
}

void BreakpointManager::guest_changed(VcpuId vcpu) {
  const std::uint64_t now = clock_->now_ns();
  const auto retry = [&](std::uint32_t index) {
    Record& r = records_[index];
    if (r.state != EventState::kError || !r.blocked_by_guest) return;
    set_state(r, EventState::kInactive, now);
    mark_dirty(r);
  };
  for (std::uint32_t index : vcpus_[vcpu].events) retry(index);
  for (std::uint32_t index : all_vcpu_events_) retry(index);
}

const EventSpec* BreakpointManager::spec(EventId id) const {
  const Record* r = find(id);
  return r ? &r->spec : nullptr;
}

void BreakpointManager::set_guest_slot(EventId id, unsigned slot) {
  if (Record* r = find(id)) r->guest_slot = static_cast<std::int8_t>(slot);
}

}  // namespace drvm::bp
