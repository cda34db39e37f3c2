// Input and output of #DB dispatch (BreakpointManager::dispatch, report_access).
#pragma once

#include <array>
#include <cstdint>

#include "bpcore/event.hpp"
#include "bpcore/types.hpp"

namespace drvm::bp {

/// A debug exception as the engine saw it.
struct DbHit {
  /// Bit n: the condition of effective slot n was met (slot_mask_from_dr6() for DR6.B0-B3).
  std::uint64_t slots = 0;
  /// DR6 BD/BS/BT bits the VMM attributes to the guest (for example BS when the guest itself
  /// set RFLAGS.TF). They pass into the guest's DR6 unchanged and force delivery to the guest.
  std::uint64_t guest_flags = 0;
};

/// One host event that fired.
struct FiredEvent {
  EventId event;
  TargetId owner = 0;
  bool overflow = false;                    ///< this hit completed a sample period
  HitAction action = HitAction::kContinue;  ///< the overflow's answer (kContinue otherwise)
};

/// Filled by dispatch; fixed size so the hit path never allocates.
struct DispatchResult {
  /// Host (non-guest) events that fired, each once, in slot order.
  std::array<FiredEvent, kMaxSlots> fired{};
  std::uint32_t fired_count = 0;
  /// Some overflow asked to stop the vCPU.
  bool stop = false;
  /// The guest must get a #DB; guest_dr6 is the DR6 its handler sees (B0-B3 are the guest's
  /// own DR numbers), already stored in the guest's DR file.
  bool deliver_to_guest = false;
  std::uint64_t guest_dr6 = 0;
};

}  // namespace drvm::bp
