#include "bpcore/guest_dr_file.hpp"

#include "bpcore/dr_encoding.hpp"
#include "bpcore/manager.hpp"

namespace drvm::bp {
namespace {

using Action = DrAccessResult::Action;

constexpr std::uint64_t kLow32 = 0xffffffff;

// Reserves the slot for a guest breakpoint that is not armed yet (ptrace uses the same kind
// of placeholder): any valid attribute will do.
constexpr BpAttr kPlaceholder{0, 1, BpType::kWrite};

DrAccessResult fault(Action action) {
  DrAccessResult result;
  result.action = action;
  return result;
}

}  // namespace

GuestDrFile::GuestDrFile(BreakpointManager& manager, VcpuId vcpu)
    : manager_(manager), vcpu_(vcpu) {}

std::uint64_t GuestDrFile::read(unsigned reg) const {
  switch (reg) {
    case 0:
    case 1:
    case 2:
    case 3:
      return addr_[reg];
    case 6:
      return (dr6_ & dr6_writable_) | dr6_fixed_ones_;
    case 7:
      return dr7::read_value(dr7_);
    default:
      return 0;
  }
}

GuestDebugRegs GuestDrFile::values() const {
  return GuestDebugRegs{{addr_[0], addr_[1], addr_[2], addr_[3]}, read(6), read(7)};
}

void GuestDrFile::set_cpu_features(bool rtm, bool bus_lock_detect) {
  const std::uint64_t active_low = (rtm ? dr6::kRtm : 0) | (bus_lock_detect ? dr6::kBld : 0);
  dr6_writable_ = dr6::kWritable | active_low;
  dr6_fixed_ones_ = dr6::kFixedOnes & ~active_low;
}

std::uint64_t GuestDrFile::deliver_db(std::uint64_t bits) {
  dr6_ = (dr6_ & ~dr6::kTrapBits) | (bits & dr6::kWritable) | dr6::kRtm | dr6::kBld;
  dr7_ &= ~dr7::kGd;
  return read(6);
}

std::optional<EventId> GuestDrFile::event(unsigned slot) const {
  return events_[slot];
}

bool GuestDrFile::event_enabled(unsigned slot) const {
  if (!events_[slot]) return false;
  const auto state = manager_.state(*events_[slot]);
  return state.ok() &&
         (state.value() == EventState::kInactive || state.value() == EventState::kActive);
}

std::uint8_t GuestDrFile::armed_mask() const {
  std::uint8_t mask = 0;
  for (unsigned i = 0; i < 4; ++i) {
    if (event_enabled(i)) mask |= static_cast<std::uint8_t>(1u << i);
  }
  return mask;
}

GuestDrFile::Plan GuestDrFile::plan(unsigned slot) const {
  const Dr7Slot control = decode_dr7_slot(dr7_, slot);
  BpAttr attr;
  switch (control.rw) {
    case DrRw::kExecute:
      attr = {addr_[slot], 1, BpType::kExecute};
      break;
    case DrRw::kWrite:
    case DrRw::kReadWrite: {
      const std::uint32_t len = control.len_bytes();
      attr = {addr_[slot] & ~std::uint64_t{len - 1}, len,
              control.rw == DrRw::kWrite ? BpType::kWrite : BpType::kReadWrite};
      break;
    }
    case DrRw::kIo:
      return Plan{false, std::nullopt};  // I/O breakpoints are not emulated
  }
  if (!is_canonical(attr.addr)) return Plan{false, std::nullopt};  // can never match
  return Plan{control.enabled(), attr};
}

Result<void> GuestDrFile::apply(unsigned slot, bool address_write, std::array<Undo, 4>& undo,
                                unsigned& undo_count) {
  const Plan p = plan(slot);
  if (!events_[slot]) {
    // Only an address write or an enable creates the event (ptrace does the same).
    if (!address_write && !p.armed) return {};
    EventSpec spec;
    spec.attr = p.attr.value_or(kPlaceholder);
    spec.binding = Binding::target_on(kGuestTarget, vcpu_);
    spec.pinned = true;
    spec.disabled = !p.armed;
    auto created = manager_.create(spec);
    if (!created) return created.error();
    events_[slot] = created.value();
    manager_.set_guest_slot(created.value(), slot);
    undo[undo_count++] = Undo{slot, true, spec.attr, false};
    return {};
  }
  const EventId id = *events_[slot];
  const BpAttr old_attr = manager_.spec(id)->attr;
  undo[undo_count++] = Undo{slot, false, old_attr, event_enabled(slot)};
  if (p.attr && *p.attr != old_attr) {
    if (auto modified = manager_.modify(id, *p.attr); !modified) return modified;
  }
  return p.armed ? manager_.enable(id) : manager_.disable(id);
}

std::optional<Error> GuestDrFile::apply_slots(unsigned first, unsigned last, bool address_write) {
  std::array<Undo, 4> undo{};
  unsigned undo_count = 0;
  std::optional<Error> error;
  for (unsigned slot = first; slot <= last && !error; ++slot) {
    const auto applied = apply(slot, address_write, undo, undo_count);
    if (applied) continue;
    // Restore every slot touched so far, newest first; this cannot fail since it returns
    // the reservations to what they were.
    while (undo_count > 0) {
      const Undo& u = undo[--undo_count];
      const EventId id = *events_[u.slot];
      if (u.created) {
        (void)manager_.destroy(id);
        events_[u.slot].reset();
        continue;
      }
      (void)manager_.modify(id, u.attr);
      (void)(u.enabled ? manager_.enable(id) : manager_.disable(id));
    }
    error = applied.error();
  }
  // Host events that yielded to the guest's breakpoints may fit again.
  manager_.guest_changed(vcpu_);
  return error;
}

std::optional<DrAccessResult> GuestDrFile::access_fault(unsigned& reg, const CpuMode& mode) {
  if (mode.cpl != 0) return fault(Action::kInjectGp);
  if (reg > 7 || ((reg == 4 || reg == 5) && mode.cr4_de)) return fault(Action::kInjectUd);
  if (dr7_ & dr7::kGd) {
    DrAccessResult result = fault(Action::kInjectDb);
    result.dr6 = deliver_db(dr6::kBd);
    return result;
  }
  if (reg == 4 || reg == 5) reg += 2;  // alias of DR6/DR7 while CR4.DE = 0
  return std::nullopt;
}

DrAccessResult GuestDrFile::mov_from_dr(unsigned reg, const CpuMode& mode) {
  if (auto faulted = access_fault(reg, mode)) return *faulted;
  DrAccessResult result;
  result.value = read(reg);
  if (!mode.long_mode) result.value &= kLow32;
  return result;
}

DrAccessResult GuestDrFile::mov_to_dr(unsigned reg, std::uint64_t value, const CpuMode& mode) {
  if (auto faulted = access_fault(reg, mode)) return *faulted;
  if (!mode.long_mode) value &= kLow32;
  if ((reg == 6 || reg == 7) && (value >> 32) != 0) return fault(Action::kInjectGp);

  DrAccessResult result;
  if (reg < 4) {
    addr_[reg] = value;
    result.arm_error = apply_slots(reg, reg, true);
  } else if (reg == 6) {
    dr6_ = value & dr6_writable_;
  } else {
    dr7_ = value & dr7::kWritable;
    result.arm_error = apply_slots(0, 3, false);
  }
  return result;
}

std::optional<Error> GuestDrFile::load(const GuestDebugRegs& regs) {
  addr_ = regs.dr;
  dr6_ = regs.dr6 & dr6_writable_;
  dr7_ = regs.dr7 & dr7::kWritable;
  return apply_slots(0, 3, false);
}

}  // namespace drvm::bp
