// Identifiers and bindings shared by every part of bpcore.
#pragma once

#include <compare>
#include <cstdint>
#include <limits>

namespace drvm::bp {

/// Index of a vCPU, 0 .. vcpus-1.
using VcpuId = std::uint32_t;
/// A target: a debugging client (gdb), a counting session, or the guest context. The VMM picks
/// the numbers; kGuestTarget is reserved for the guests' own debug registers.
using TargetId = std::uint32_t;

/// "Every vCPU" in a target-bound binding.
inline constexpr VcpuId kAllVcpus = std::numeric_limits<VcpuId>::max();
/// The target that owns the events created from the guest's DR0-DR7.
inline constexpr TargetId kGuestTarget = std::numeric_limits<TargetId>::max();
/// Upper bound on slots per vCPU (slot masks are 64-bit).
inline constexpr std::uint32_t kMaxSlots = 64;
/// Slots each pool keeps for the guest's own DR0-DR3 on every vCPU, on top of the host's: the
/// guest's breakpoints never compete with host events (see docs/bpcore.md, "Guest first").
inline constexpr std::uint32_t kGuestSlots = 4;
/// The most host slots a mixed layout can have next to the guest's (slot masks are 64-bit).
inline constexpr std::uint32_t kMaxHostSlots = kMaxSlots - kGuestSlots;

/// How an event is counted against the slot constraints (the kernel's CPU-bound vs task-bound).
enum class Scope : std::uint8_t {
  /// Bound to one vCPU whatever targets run there, like a CPU-bound perf event: it takes a slot
  /// away from every target on that vCPU.
  kVcpu,
  /// Bound to a target, on all vCPUs (vcpu == kAllVcpus) or on one vCPU, like a task-bound
  /// breakpoint: it only competes with the same target's events and with vCPU-bound events.
  kTarget,
};

/// Where an event applies and who owns it.
struct Binding {
  Scope scope = Scope::kTarget;
  /// The owner. For kTarget it is the target the constraints count against; for kVcpu it only
  /// names the owner (exclusive rule, dispatch results).
  TargetId target = 0;
  /// The vCPU, or kAllVcpus (kTarget only).
  VcpuId vcpu = kAllVcpus;

  static constexpr Binding on_vcpu(VcpuId vcpu, TargetId owner = 0) {
    return {Scope::kVcpu, owner, vcpu};
  }
  static constexpr Binding target_all(TargetId target) {
    return {Scope::kTarget, target, kAllVcpus};
  }
  static constexpr Binding target_on(TargetId target, VcpuId vcpu) {
    return {Scope::kTarget, target, vcpu};
  }
  bool applies_to(VcpuId v) const { return vcpu == kAllVcpus || vcpu == v; }
  /// The guest's own breakpoints: they have their own slots and are placed first.
  bool is_guest() const { return target == kGuestTarget; }
  friend bool operator==(const Binding&, const Binding&) = default;
};

/// Handle of an event: a storage index plus a generation so stale handles are detected.
struct EventId {
  std::uint32_t index = std::numeric_limits<std::uint32_t>::max();
  std::uint32_t generation = 0;

  bool valid() const { return index != std::numeric_limits<std::uint32_t>::max(); }
  friend auto operator<=>(const EventId&, const EventId&) = default;
};

}  // namespace drvm::bp
