// Perf-style breakpoint events: what a client asks for and what it can read back.
#pragma once

#include <cstdint>

#include "bpcore/attributes.hpp"
#include "bpcore/types.hpp"

namespace drvm::bp {

/// perf's event states. Only kInactive and kActive count as enabled.
enum class EventState : std::uint8_t {
  kError,     ///< a pinned event the scheduler could not place; enable() retries
  kOff,       ///< disabled
  kInactive,  ///< enabled, not on any vCPU's slots right now
  kActive,    ///< enabled and on the slots of at least one vCPU
};

/// Why the scheduler left an enabled event off a vCPU's slots (the cause of kError, or of a
/// flexible event waiting).
enum class PlaceError : std::uint8_t {
  kNone,       ///< placed, or never refused
  kNoSlot,     ///< the host's slots were full (other owners' pinned events hold them)
  kExclusive,  ///< the exclusive rule: another owner's events (the guest's included) are there
};

/// What the owner wants after an overflow.
enum class HitAction : std::uint8_t { kContinue, kStop };

/// Passed to an overflow handler.
struct Overflow {
  EventId event;
  VcpuId vcpu;
  std::uint64_t count;  ///< the event's count including this hit
};

/// Called every `sample_period` hits, on the hit path: keep it short, do not call back into
/// the manager. A plain function pointer plus context so the hit path makes no allocation.
struct OverflowHandler {
  HitAction (*fn)(void* context, const Overflow& overflow) = nullptr;
  void* context = nullptr;
};

/// A request to create an event.
struct EventSpec {
  BpAttr attr;
  Binding binding;
  /// Pinned events reserve their slots at creation (kNoSpace if the constraint rules say no)
  /// and are always on the slots while enabled, or go to kError. Flexible events reserve
  /// nothing and share the slots left by pinned ones in round robin.
  bool pinned = true;
  /// While an exclusive event is on a vCPU's slots, every event on that vCPU's slots has the
  /// same owner (binding.target). See docs/bpcore.md.
  bool exclusive = false;
  /// Create in kOff instead of enabled.
  bool disabled = false;
  /// Slots the event occupies (1 for x86 breakpoints).
  std::uint32_t weight = 1;
  /// 0: count only. N > 0: every Nth hit is an overflow: the handler runs and its answer is
  /// reported; without a handler an overflow asks to stop.
  std::uint64_t sample_period = 0;
  OverflowHandler on_overflow;
};

/// read(): the count and the times needed to scale a multiplexed count
/// (estimate = value * time_enabled / time_running).
struct EventReading {
  std::uint64_t value = 0;
  std::uint64_t time_enabled = 0;  ///< ns spent in kInactive or kActive
  std::uint64_t time_running = 0;  ///< ns spent in kActive
  std::uint64_t time_error = 0;    ///< ns spent in kError (a pinned event that was not placed)
  std::uint64_t errors = 0;        ///< times the scheduler put the event in kError
  /// Why it last went to kError (kNone if it never did): kept after it is placed again, so a
  /// report at the end of a run can still say what happened.
  PlaceError place_error = PlaceError::kNone;
};

/// A short phrase for reports ("no slot: ..."); "" for kNone.
constexpr const char* place_error_text(PlaceError error) {
  switch (error) {
    case PlaceError::kNone:
      return "";
    case PlaceError::kNoSlot:
      return "no slot: other owners' pinned events hold the host's slots";
    case PlaceError::kExclusive:
      return "exclusive: another owner's breakpoints (the guest's own, gdb's or a session's) are "
             "on the vCPU";
  }
  return "";
}

}  // namespace drvm::bp
