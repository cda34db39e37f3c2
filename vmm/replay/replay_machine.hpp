// What reverse execution needs from a machine that replays its recorded past: restore a live stop's
// snapshot, arm breakpoints and watchpoints ("triggers"), run until a hit the caller picks, step
// one instruction. The Navigator (navigator.hpp) finds positions with these; the KVM implementation
// is kvm_replay_machine.hpp, the unit tests use a small deterministic interpreter.
//
// Hit semantics (the debug controller's, DebugController::resume/single_step):
//  - An execute trigger fires at an instruction boundary before the instruction runs, unless the
//    boundary already reported an instruction breakpoint at that address (the vCPU stopped there
//    and is resumed: reported_here()). Several triggers at one boundary each fire.
//  - A data trigger fires after the instruction that accessed it (trap-like), once per watched
//    piece the access touched.
//  - step() runs exactly one instruction and reports only data hits: the caller decides about the
//    execute triggers at the boundary it starts from (exec_pending()).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace drvm::vmm::replay {

enum class TriggerKind : std::uint8_t { kExecute, kWrite, kRead, kAccess };

// A breakpoint (kExecute, length 1) or a watchpoint on [address, address + length).
struct Trigger {
  TriggerKind kind = TriggerKind::kExecute;
  std::uint64_t address = 0;
  std::uint64_t length = 1;
  friend bool operator==(const Trigger&, const Trigger&) = default;
};

// One hit of an armed trigger: `trigger` indexes the span given to arm().
struct ReplayHit {
  std::size_t trigger = 0;
  bool data = false;  // a data trigger's hit (after the instruction)
};

// The registers that identify a state: every position drvm reaches again is checked against them.
struct Fingerprint {
  std::array<std::uint64_t, 24> words{};
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

struct RunResult {
  enum class Kind : std::uint8_t {
    kStopped,   // the hit callback asked to stop, or the step finished
    kDiverged,  // the replay left the recorded path (why says where)
    kEndOfLog,  // the replay ran past everything recorded
    kFailed,    // the machine could not run (a KVM error, the guest ended)
  };
  Kind kind = Kind::kStopped;
  std::string why;
  bool ok() const { return kind == Kind::kStopped; }
  static RunResult stopped() { return {}; }
};

class ReplayMachine {
 public:
  virtual ~ReplayMachine() = default;
  // Puts the machine back at live stop `stop`, which has a snapshot (Navigator::Stop::snapshot):
  // registers, memory, devices and the debug state, including reported_here().
  virtual void restore(std::size_t stop) = 0;
  // Arms exactly these triggers (replacing the previous ones; empty disarms all).
  virtual void arm(std::span<const Trigger> triggers) = 0;
  // Runs until on_hit returns true for a hit (the machine then stands at that hit's boundary).
  // The boundary it starts from fires nothing: the caller fires its execute triggers itself
  // (engines differ in whether a breakpoint at the current RIP fires on entry).
  virtual RunResult run(const std::function<bool(const ReplayHit&)>& on_hit) = 0;
  // Runs one instruction; data hits during it go to on_hit.
  virtual RunResult step(const std::function<void(const ReplayHit&)>& on_hit) = 0;
  // The linear address of the next instruction.
  virtual std::uint64_t pc() = 0;
  // The address whose instruction breakpoints this boundary has already reported (run() lets the
  // instruction there run without firing them again), if any.
  virtual std::optional<std::uint64_t> reported_here() = 0;
  virtual void set_reported_here(std::optional<std::uint64_t> address) = 0;
  // The addresses where an instruction would start that ends right at `pc` (decoded from the
  // bytes before it): where the instruction that led to a boundary most likely began.
  virtual std::vector<std::uint64_t> instructions_ending_at(std::uint64_t pc) = 0;
  virtual Fingerprint fingerprint() = 0;
  // Guest-caused exits (port I/O, device MMIO) since the start of the recording: a coarse clock.
  virtual std::uint64_t landmarks() = 0;
  // Whether memory equals what it was at live stop `stop` (which has a snapshot).
  virtual bool memory_matches(std::size_t stop) = 0;
};

}  // namespace drvm::vmm::replay
