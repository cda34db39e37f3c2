// BreakpointManager: the hit path (#DB dispatch and engine-reported hits).
#include <bit>

#include "bpcore/dr_encoding.hpp"
#include "bpcore/manager.hpp"

namespace drvm::bp {
namespace {

void reset(DispatchResult& out) {
  out.fired_count = 0;
  out.stop = false;
  out.deliver_to_guest = false;
  out.guest_dr6 = 0;
}

}  // namespace

void BreakpointManager::hit(VcpuId vcpu, EventId id, DispatchResult& out,
                            std::uint64_t& guest_bits) {
  Record* r = find(id);
  // hit_mark: an event on several slots (weight > 1) counts once per exception.
  if (!r || r->state != EventState::kActive || r->hit_mark == hit_epoch_) return;
  r->hit_mark = hit_epoch_;
  ++r->count;
  if (r->guest_slot != kNoGuestSlot) {
    guest_bits |= dr6::b(static_cast<unsigned>(r->guest_slot));
    return;
  }
  FiredEvent& fired = out.fired[out.fired_count++];
  fired = FiredEvent{id, r->spec.binding.target, false, HitAction::kContinue};
  if (r->spec.sample_period != 0 && --r->period_left == 0) {
    r->period_left = r->spec.sample_period;
    fired.overflow = true;
    const OverflowHandler& handler = r->spec.on_overflow;
    fired.action =
        handler.fn ? handler.fn(handler.context, Overflow{id, vcpu, r->count}) : HitAction::kStop;
    out.stop = out.stop || fired.action == HitAction::kStop;
  }
}

void BreakpointManager::finish_dispatch(VcpuId vcpu, std::uint64_t guest_flags,
                                        std::uint64_t guest_bits, DispatchResult& out) {
  guest_flags &= dr6::kBd | dr6::kBs | dr6::kBt;
  if (guest_bits == 0 && guest_flags == 0) return;
  out.deliver_to_guest = true;
  out.guest_dr6 = vcpus_[vcpu].guest->deliver_db(guest_bits | guest_flags);
}

void BreakpointManager::dispatch(VcpuId vcpu, const DbHit& hit_info, DispatchResult& out) {
  reset(out);
  ++hit_epoch_;
  std::uint64_t guest_bits = 0;
  const EffectiveSet& eff = vcpus_[vcpu].effective;
  for (std::uint64_t m = hit_info.slots & eff.used_mask; m; m &= m - 1) {
    hit(vcpu, eff.slot_event[static_cast<unsigned>(std::countr_zero(m))], out, guest_bits);
  }
  finish_dispatch(vcpu, hit_info.guest_flags, guest_bits, out);
}

void BreakpointManager::report_access(VcpuId vcpu, std::uint64_t addr, std::uint32_t size,
                                      Access access, DispatchResult& out) {
  reset(out);
  ++hit_epoch_;
  std::uint64_t guest_bits = 0;
  const EffectiveSet& eff = vcpus_[vcpu].effective;
  for (std::uint64_t m = eff.slots_matching(eff.used_mask, addr, size, access); m; m &= m - 1) {
    hit(vcpu, eff.slot_event[static_cast<unsigned>(std::countr_zero(m))], out, guest_bits);
  }
  finish_dispatch(vcpu, 0, guest_bits, out);
}

}  // namespace drvm::bp
