// The guest's virtual debug registers of one vCPU: MOV DR semantics (Intel SDM Vol. 3, 17.2)
// and the translation of the guest's breakpoints into guest-owned events.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "bpcore/attributes.hpp"
#include "bpcore/dr_encoding.hpp"
#include "bpcore/result.hpp"
#include "bpcore/types.hpp"

namespace drvm::bp {

class BreakpointManager;

/// The processor state that decides how a MOV DR behaves.
struct CpuMode {
  bool cr4_de = false;    ///< CR4.DE: DR4/DR5 raise #UD instead of aliasing DR6/DR7
  bool long_mode = true;  ///< 64-bit mode: 64-bit operands, #GP on DR6/DR7 bits 63..32
  std::uint8_t cpl = 0;   ///< MOV DR needs CPL 0
};

/// What the VMM must do after a guest MOV DR.
struct DrAccessResult {
  enum class Action : std::uint8_t {
    kOk,        ///< completed: advance RIP (a read's result is in `value`)
    kInjectUd,  ///< inject #UD (DR4/DR5 with CR4.DE = 1, or DR8-DR15)
    kInjectGp,  ///< inject #GP(0) (CPL > 0, or DR6/DR7 bits 63..32 written non-zero)
    kInjectDb,  ///< inject #DB, a fault: DR7.GD was set; `dr6` has BD and GD is now clear
  };
  Action action = Action::kOk;
  std::uint64_t value = 0;  ///< MOV from DR: the value read
  std::uint64_t dr6 = 0;    ///< kInjectDb: the guest's DR6 in its handler
  /// The write was accepted (hardware never refuses it) but a breakpoint could not be armed.
  /// The guest has its own kGuestSlots per pool, so host events can never cause this; it is
  /// kept for what is left (e.g. a manager error). The guest's breakpoints are left as they
  /// were before the write; the VMM should report it.
  std::optional<Error> arm_error;
};

/// DR0-DR3, DR6, DR7 as the guest reads them.
struct GuestDebugRegs {
  std::array<std::uint64_t, 4> dr{};
  std::uint64_t dr6 = 0;
  std::uint64_t dr7 = 0;
};

/// Per-vCPU virtual debug-register file. Owned by BreakpointManager (guest(vcpu)).
///
/// Guest breakpoint i becomes a pinned event of target kGuestTarget bound to this vCPU, as
/// ptrace does for a debugger: writing DRi creates (or updates) the event, disabled unless
/// DR7 enables slot i; a DR7 write enables, modifies or disables the four events and, if one
/// cannot be armed, restores all four. The guest's events have their own slots (kGuestSlots)
/// and are placed before any host event, so no host event can keep them off the slots. The event's
/// address is DRi aligned down to its length (the processor ignores the low bits). Not armed, but
/// kept in the file: R/W = 10b (I/O) and non-canonical addresses. An execute breakpoint with LEN !=
/// 00b (undefined in the SDM) is armed as a 1-byte instruction breakpoint at DRi.
class GuestDrFile {
 public:
  GuestDrFile(BreakpointManager& manager, VcpuId vcpu);
  GuestDrFile(const GuestDrFile&) = delete;
  GuestDrFile& operator=(const GuestDrFile&) = delete;

  /// MOV from DRreg (reg 0-15 as encoded in the instruction).
  DrAccessResult mov_from_dr(unsigned reg, const CpuMode& mode);
  /// MOV to DRreg.
  DrAccessResult mov_to_dr(unsigned reg, std::uint64_t value, const CpuMode& mode);

  /// The architectural value of DR0-DR3, DR6 or DR7 (reg 0-3, 6, 7), without access checks.
  std::uint64_t read(unsigned reg) const;
  /// All registers, as read().
  GuestDebugRegs values() const;
  /// Replaces the whole file (state import, reset) as a series of MOVs without fault checks.
  /// Returns the first arming error, as DrAccessResult::arm_error.
  std::optional<Error> load(const GuestDebugRegs& regs);

  /// The guest CPU's features that make DR6's active-low bits writable (RTM, bus-lock
  /// detection); without them those bits read as 1, as on processors that lack them.
  void set_cpu_features(bool rtm, bool bus_lock_detect);

  /// A #DB is delivered to the guest: B0-B3 become `bits`' B0-B3, BD/BS/BT in `bits` are set
  /// (the others stay), DR7.GD is cleared (SDM 17.2.4). Returns the DR6 the guest sees.
  std::uint64_t deliver_db(std::uint64_t bits);

  /// The event behind guest breakpoint `slot` (0-3), if the guest has used that slot.
  std::optional<EventId> event(unsigned slot) const;
  /// Bit i set when guest breakpoint i is enabled and accepted by the manager.
  std::uint8_t armed_mask() const;

 private:
  struct Plan {
    bool armed = false;
    std::optional<BpAttr> attr;  // empty: keep the event's attributes
  };
  struct Undo {
    unsigned slot;
    bool created;
    BpAttr attr;
    bool enabled;
  };
  Plan plan(unsigned slot) const;
  Result<void> apply(unsigned slot, bool address_write, std::array<Undo, 4>& undo,
                     unsigned& undo_count);
  std::optional<Error> apply_slots(unsigned first, unsigned last, bool address_write);
  bool event_enabled(unsigned slot) const;
  // The checks every MOV DR makes before it executes (#GP at CPL > 0, #UD for DR4/DR5 with
  // CR4.DE or DR8-DR15, #DB when DR7.GD is set); maps DR4/DR5 to DR6/DR7 otherwise.
  std::optional<DrAccessResult> access_fault(unsigned& reg, const CpuMode& mode);

  BreakpointManager& manager_;
  VcpuId vcpu_;
  std::array<std::uint64_t, 4> addr_{};
  std::uint64_t dr6_ = dr6::kFixedOnes;  // the active-low bits start at 1
  std::uint64_t dr6_writable_ = dr6::kWritable;
  std::uint64_t dr6_fixed_ones_ = dr6::kFixedOnes;
  std::uint64_t dr7_ = 0;  // writable bits only
  std::array<std::optional<EventId>, 4> events_{};
};

}  // namespace drvm::bp
