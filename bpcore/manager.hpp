// BreakpointManager: events, slot constraints, per-vCPU scheduling, guest DR files and #DB
// dispatch. Single-threaded: the VMM serialises calls (one lock or one thread).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bpcore/clock.hpp"
#include "bpcore/constraints.hpp"
#include "bpcore/dispatch.hpp"
#include "bpcore/effective_set.hpp"
#include "bpcore/event.hpp"
#include "bpcore/guest_dr_file.hpp"
#include "bpcore/result.hpp"
#include "bpcore/rotation.hpp"
#include "bpcore/slot_layout.hpp"
#include "bpcore/types.hpp"

namespace drvm::bp {

struct ManagerConfig {
  std::uint32_t vcpus = 1;
  /// The host's slots per vCPU: what host events reserve and share. The guest's kGuestSlots per
  /// pool come on top (layout().with_guest_slots() is what the scheduler fills), so mixed(4) is
  /// 8 slots in all. Slots 0-3 are the ones encoded into DR0-DR3/DR7; the guest's events take
  /// them first.
  SlotLayout layout = SlotLayout::mixed();
};

class BreakpointManager {
 public:
  /// `clock` must outlive the manager (or set_clock()); nullptr uses a steady clock.
  /// Throws std::invalid_argument for 0 vCPUs or an invalid layout (also when the host's slots
  /// plus the guest's exceed kMaxSlots).
  explicit BreakpointManager(const ManagerConfig& config, Clock* clock = nullptr);
  ~BreakpointManager();
  BreakpointManager(const BreakpointManager&) = delete;
  BreakpointManager& operator=(const BreakpointManager&) = delete;

  // --- Events -------------------------------------------------------------------------
  /// Validates and creates an event. Pinned events reserve their slots now.
  /// Errors: attribute errors (validate()), kBadVcpu, kBadWeight, kNoSpace.
  Result<EventId> create(const EventSpec& spec);
  /// Removes the event and releases its reservation.
  Result<void> destroy(EventId id);
  /// kOff or kError -> kInactive; the next schedule() places it.
  Result<void> enable(EventId id);
  /// -> kOff; leaves the slots at the next schedule().
  Result<void> disable(EventId id);
  /// New address, length and type. The event keeps its slot when the pool is unchanged; when
  /// the pool changes a pinned event re-reserves, and on kNoSpace nothing changes.
  Result<void> modify(EventId id, const BpAttr& attr);
  /// Count, time enabled and time running up to now.
  Result<EventReading> read(EventId id);
  Result<EventState> state(EventId id) const;
  /// Schedules every vCPU the event applies to, then returns its state: what an owner asks to
  /// learn at once whether a pinned event is on the slots (kActive) or was refused (kError).
  Result<EventState> placed_state(EventId id);
  /// Why the last schedule left the event off a vCPU's slots (kNone once it is placed again).
  Result<PlaceError> place_error(EventId id) const;
  /// The event's current spec (attr reflects modify()); nullptr for an unknown id.
  const EventSpec* spec(EventId id) const;

  /// Switches the time source (nullptr: a steady clock), as perf's events run on their
  /// context's clock: every event's times are accounted up to now on the old clock and go on
  /// from now on the new one. `clock` must outlive its use.
  void set_clock(Clock* clock);

  // --- Scheduling -----------------------------------------------------------------------
  /// True when events changed since the last schedule(vcpu).
  bool needs_schedule(VcpuId vcpu) const;
  /// Places the vCPU's enabled events onto its slots: the guest's first (in its own slots,
  /// taking DR0-DR3), then the host's pinned ones (vCPU-bound, then target-bound, each in
  /// creation order; one that does not fit goes to kError), then flexible ones in round-robin
  /// order from the rotation point. An event already on a slot keeps it unless the guest needs
  /// the slot. Returns the cached result, without work, when nothing changed.
  const EffectiveSet& schedule(VcpuId vcpu);
  /// The last result of schedule(vcpu) (what should be on the hardware now).
  const EffectiveSet& effective(VcpuId vcpu) const { return vcpus_[vcpu].effective; }
  /// When the last schedule left flexible events out, turn the vCPU's rotation ring by one
  /// event (bpcore/rotation.hpp) and reschedule; returns whether it did.
  bool rotate(VcpuId vcpu);

  // --- Dispatch (hit path: no allocation, no clock read) ----------------------------------
  /// A #DB on `vcpu` with the slots whose condition was met (effective slot numbers).
  void dispatch(VcpuId vcpu, const DbHit& hit, DispatchResult& out);
  /// An access of `size` bytes at `addr`: every event on the vCPU's slots it matches fires.
  void report_access(VcpuId vcpu, std::uint64_t addr, std::uint32_t size, Access access,
                     DispatchResult& out);

  // --- Per-vCPU guest state -----------------------------------------------------------------
  GuestDrFile& guest(VcpuId vcpu) { return *vcpus_[vcpu].guest; }
  /// For GuestDrFile, a client of the manager like any other (as ptrace is of hw_breakpoint):
  /// guest event `id` stands for the guest's DR`slot`, so its hits set that B bit in the guest's
  /// DR6 ...
  void set_guest_slot(EventId id, unsigned slot);
  /// ... and the guest's breakpoints on `vcpu` changed: host events they pushed into kError try
  /// again.
  void guest_changed(VcpuId vcpu);

  const SlotConstraints& constraints() const { return constraints_; }
  /// Every slot of a vCPU: the host's plus the guest's (slot numbers index this layout).
  const SlotLayout& layout() const { return layout_; }
  /// The host's slots (ManagerConfig::layout).
  const SlotLayout& host_layout() const { return constraints_.layout(); }
  std::uint32_t vcpus() const { return constraints_.vcpus(); }

 private:
  static constexpr std::int8_t kNoGuestSlot = -1;

  struct Record {
    EventSpec spec;
    PoolIndex pool = 0;
    std::uint32_t generation = 0;
    bool live = false;
    EventState state = EventState::kOff;
    std::int8_t guest_slot = kNoGuestSlot;
    PlaceError place_error = PlaceError::kNone;
    PlaceError last_error = PlaceError::kNone;  // cause of the latest kError
    bool blocked_by_guest = false;  // in kError because the guest's events hold the vCPU
    std::uint64_t serial = 0;       // creation order
    std::uint64_t count = 0;
    std::uint64_t period_left = 0;
    std::uint64_t time_enabled = 0;
    std::uint64_t time_running = 0;
    std::uint64_t time_error = 0;
    std::uint64_t errors = 0;
    std::uint64_t stamp = 0;        // time of the last accounting
    std::uint32_t placements = 0;   // vCPUs whose effective set holds the event
    std::uint32_t list_pos = 0;     // index in its vCPU list or in all_vcpu_events_
    std::uint32_t slots_left = 0;   // scheduler scratch
    std::uint64_t chosen_mark = 0;  // scheduler scratch
    std::uint64_t seen_mark = 0;    // scheduler scratch
    std::uint64_t hit_mark = 0;     // dispatch scratch
  };
  struct VcpuState {
    std::vector<std::uint32_t> events;  // records bound to this vCPU only
    bool dirty = true;
    std::uint64_t seen_global = 0;
    RotationRing rotation;  // its flexible events, scheduled from the head
    bool rotation_pending = false;
    EffectiveSet effective;
    std::unique_ptr<GuestDrFile> guest;
  };

  Record* find(EventId id);
  const Record* find(EventId id) const;
  std::vector<std::uint32_t>& list_of(const Record& r);
  void mark_dirty(const Record& r);
  static void account(Record& r, std::uint64_t now);
  void set_state(Record& r, EventState state, std::uint64_t now);
  void collect(VcpuId vcpu);
  void place(VcpuState& vs, std::uint64_t now);
  void assign_slots(VcpuState& vs, std::uint64_t now);
  void hit(VcpuId vcpu, EventId id, DispatchResult& out, std::uint64_t& guest_bits);
  void finish_dispatch(VcpuId vcpu, std::uint64_t guest_flags, std::uint64_t guest_bits,
                       DispatchResult& out);
  std::uint32_t budget(const Record& r) const;

  std::unique_ptr<Clock> own_clock_;
  Clock* clock_;
  SlotConstraints constraints_;
  SlotLayout layout_;  // host + guest slots
  std::vector<Record> records_;
  std::vector<std::uint32_t> free_records_;
  std::vector<std::uint32_t> all_vcpu_events_;  // target-bound records on every vCPU
  std::vector<VcpuState> vcpus_;
  std::uint64_t global_changes_ = 0;  // bumped when an all-vCPU event changes
  std::uint64_t next_serial_ = 0;
  std::uint64_t sched_epoch_ = 0;
  std::uint64_t hit_epoch_ = 0;
  // Scheduler scratch, kept to avoid allocations once warm.
  std::vector<std::uint32_t> pinned_;
  std::vector<std::uint32_t> flexible_;
  std::vector<std::uint32_t> chosen_;
};

}  // namespace drvm::bp
