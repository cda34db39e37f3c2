#include "vmm/replay/kvm_replay_machine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

#include "bpcore/attributes.hpp"
#include "vmm/debug/access_decoder.hpp"

namespace drvm::vmm::replay {
namespace {

constexpr unsigned kVcpu = 0;

std::vector<RamRange> ram_of(Machine& machine) {
  GuestMemory& memory = machine.memory();
  return {RamRange{0, std::span(reinterpret_cast<std::uint8_t*>(memory.host_base()),
                                static_cast<std::size_t>(memory.size()))}};
}

bp::BpType bp_type(TriggerKind kind) {
  switch (kind) {
    case TriggerKind::kWrite:
      return bp::BpType::kWrite;
    case TriggerKind::kRead:
      return bp::BpType::kRead;
    case TriggerKind::kAccess:
      return bp::BpType::kReadWrite;
    case TriggerKind::kExecute:
      break;
  }
  return bp::BpType::kExecute;
}

}  // namespace

KvmReplayMachine::KvmReplayMachine(Machine& machine, debug::DebugController& controller,
                                   ExitLog& log)
    : machine_(machine),
      controller_(controller),
      log_(log),
      snapshotter_(machine),
      memory_(
          ram_of(machine),
          [&controller](std::uint64_t gpa, std::span<std::uint8_t> page) {
            controller.read_original_physical(gpa, page);
          },
          [&controller](std::uint64_t gpa, std::span<const std::uint8_t> page) {
            controller.write_physical(gpa, page);
          }) {
  controller_.set_hit_callback(debug::kReplayOwner,
                               [this](const debug::HostHit& hit) { return on_hit(hit); });
}

KvmReplayMachine::~KvmReplayMachine() {
  controller_.set_hit_callback(debug::kReplayOwner, {});
  disarm();
}

std::size_t KvmReplayMachine::take_snapshot(std::size_t stop) {
  Snapshot snapshot;
  snapshot.machine = snapshotter_.capture(machine_);
  snapshot.guest_debug = controller_.guest_debug_regs(kVcpu);
  snapshot.reported = controller_.reported_breakpoint(kVcpu);
  snapshot.landmarks = log_.landmarks();
  std::size_t added = memory_.capture(stop);
  added += sizeof(Snapshot) + snapshot.machine.vcpus.size() * sizeof(VcpuSnapshot);
  snapshots_[stop] = std::move(snapshot);
  return added;
}

void KvmReplayMachine::drop_snapshots_before(std::size_t stop) {
  memory_.drop_before(stop);
  snapshots_.erase(snapshots_.begin(), snapshots_.lower_bound(stop));
}

std::size_t KvmReplayMachine::bytes() const {
  return memory_.bytes() + snapshots_.size() * (sizeof(Snapshot) + sizeof(VcpuSnapshot)) +
         log_.bytes();
}

// ---------------------------------------------------------------------------------------------
// Outcomes of a run or step

void KvmReplayMachine::on_stop(const debug::StopInfo& /*info*/) {
  {
    std::lock_guard lock(mutex_);
    if (!outcome_) outcome_ = RunResult::stopped();
  }
  changed_.notify_all();
}

void KvmReplayMachine::on_exit_log_problem(bool end_of_log, const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (!outcome_) {
      outcome_ =
          RunResult{end_of_log ? RunResult::Kind::kEndOfLog : RunResult::Kind::kDiverged, why};
    }
  }
  changed_.notify_all();
}

void KvmReplayMachine::on_fault(const std::string& what) {
  {
    std::lock_guard lock(mutex_);
    if (!outcome_) {
      outcome_ = RunResult{RunResult::Kind::kDiverged, "the guest faulted in the replay: " + what};
    }
  }
  changed_.notify_all();
}

void KvmReplayMachine::interrupt() {
  {
    std::lock_guard lock(mutex_);
    interrupted_ = true;
    if (!outcome_) outcome_ = RunResult{RunResult::Kind::kFailed, "interrupted"};
  }
  changed_.notify_all();
}

bool KvmReplayMachine::clear_interrupt() {
  std::lock_guard lock(mutex_);
  return std::exchange(interrupted_, false);
}

RunResult KvmReplayMachine::wait() {
  RunResult result;
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return outcome_.has_value(); });
    result = *outcome_;
  }
  machine_.vcpu(kVcpu).pause();  // parked already, unless interrupt() ended it
  {
    std::lock_guard lock(mutex_);
    hit_handler_ = {};
  }
  if (machine_.finishing()) return RunResult{RunResult::Kind::kFailed, "the run ended"};
  return result;
}

bool KvmReplayMachine::on_hit(const debug::HostHit& hit) {
  std::function<bool(const ReplayHit&)> handler;
  std::optional<std::size_t> trigger;
  {
    std::lock_guard lock(mutex_);
    if (!hit_handler_) return false;  // no replay runs: the live run passes through
    if (outcome_) return true;        // interrupted: stop where it is
    handler = hit_handler_;
    for (const auto& [event, index] : armed_) {
      if (event == hit.event) trigger = index;
    }
  }
  if (!handler || !trigger) return false;
  return handler(ReplayHit{*trigger, hit.data});
}

// ---------------------------------------------------------------------------------------------
// ReplayMachine

void KvmReplayMachine::restore(std::size_t stop) {
  const Snapshot& snapshot = snapshots_.at(stop);
  snapshotter_.restore(machine_, snapshot.machine);
  memory_.restore(stop);
  controller_.set_guest_debug_regs(kVcpu, snapshot.guest_debug);
  controller_.state_replaced();
  controller_.set_reported_breakpoint(kVcpu, snapshot.reported);
  log_.replay_from(snapshot.landmarks);
}

void KvmReplayMachine::disarm() {
  std::vector<std::pair<bp::EventId, std::size_t>> old;
  {
    std::lock_guard lock(mutex_);
    old.swap(armed_);
  }
  for (const auto& [event, index] : old) (void)controller_.destroy_event(event);
}

void KvmReplayMachine::arm(std::span<const Trigger> triggers) {
  disarm();
  std::vector<std::pair<bp::EventId, std::size_t>> armed;
  for (std::size_t index = 0; index < triggers.size(); ++index) {
    const Trigger& trigger = triggers[index];
    const bp::BpType type = bp_type(trigger.kind);
    const std::vector<bp::BpAttr> pieces =
        type == bp::BpType::kExecute
            ? std::vector<bp::BpAttr>{bp::BpAttr{trigger.address, 1, type}}
            : bp::watch_pieces(trigger.address, trigger.length, type, bp::kMaxHostSlots);
    for (const bp::BpAttr& piece : pieces) {
      bp::EventSpec spec;
      spec.attr = piece;
      spec.binding = bp::Binding::target_all(debug::kReplayOwner);
      spec.pinned = true;
      const auto created = controller_.create_event(spec);
      if (!created) {
        for (const auto& [event, i] : armed) (void)controller_.destroy_event(event);
        throw std::runtime_error(fmt::format("a replay breakpoint at {:#x} cannot be armed: {}",
                                             trigger.address, bp::error_message(created.error())));
      }
      armed.emplace_back(created.value(), index);
    }
  }
  std::lock_guard lock(mutex_);
  armed_ = std::move(armed);
}

RunResult KvmReplayMachine::run(const std::function<bool(const ReplayHit&)>& on_hit) {
  {
    std::lock_guard lock(mutex_);
    outcome_.reset();
    if (interrupted_) outcome_ = RunResult{RunResult::Kind::kFailed, "interrupted"};
    hit_handler_ = on_hit;
  }
  controller_.set_reported_breakpoint(kVcpu, pc());  // the Navigator fired this boundary's
  controller_.resume(kVcpu);
  return wait();
}

RunResult KvmReplayMachine::step(const std::function<void(const ReplayHit&)>& on_hit) {
  {
    std::lock_guard lock(mutex_);
    outcome_.reset();
    if (interrupted_) outcome_ = RunResult{RunResult::Kind::kFailed, "interrupted"};
    hit_handler_ = [on_hit](const ReplayHit& hit) {
      on_hit(hit);
      return false;
    };
  }
  controller_.single_step(kVcpu);
  return wait();
}

std::uint64_t KvmReplayMachine::pc() {
  Vcpu& cpu = machine_.vcpu(kVcpu).vcpu();
  return cpu.sregs().cs.base + cpu.regs().rip;
}

std::optional<std::uint64_t> KvmReplayMachine::reported_here() {
  // RFLAGS.RF set: the instruction at RIP runs without its breakpoints (SDM Vol. 3, 17.3.1.1),
  // as after one that was reported already.
  Vcpu& cpu = machine_.vcpu(kVcpu).vcpu();
  const kvm_regs regs = cpu.regs();
  if ((regs.rflags & (std::uint64_t{1} << 16)) != 0) return cpu.sregs().cs.base + regs.rip;
  return controller_.reported_breakpoint(kVcpu);
}

void KvmReplayMachine::set_reported_here(std::optional<std::uint64_t> address) {
  controller_.set_reported_breakpoint(kVcpu, address);
}

std::vector<std::uint64_t> KvmReplayMachine::instructions_ending_at(std::uint64_t pc) {
  constexpr std::size_t kLongest = 15;
  std::vector<std::uint64_t> starts;
  if (pc < kLongest) return starts;
  std::array<std::uint8_t, 2 * kLongest> bytes{};
  const std::size_t got = controller_.read_original(kVcpu, pc - kLongest, bytes);
  if (got < kLongest) return starts;
  Vcpu& cpu = machine_.vcpu(kVcpu).vcpu();
  const kvm_regs regs = cpu.regs();
  const kvm_sregs sregs = cpu.sregs();
  for (std::size_t back = 1; back <= kLongest; ++back) {
    const std::span<const std::uint8_t> at(bytes.data() + kLongest - back, got - (kLongest - back));
    const debug::DecodedAccesses decoded = debug::DecodedAccesses::decode(at, regs, sregs);
    if (decoded.valid() && decoded.length() == back) starts.push_back(pc - back);
  }
  return starts;
}

Fingerprint KvmReplayMachine::fingerprint() {
  return fingerprint_of(machine_.vcpu(kVcpu).vcpu());
}

std::uint64_t KvmReplayMachine::landmarks() {
  return log_.landmarks();
}

bool KvmReplayMachine::memory_matches(std::size_t stop) {
  return memory_.matches(stop);
}

Fingerprint fingerprint_of(Vcpu& vcpu) {
  const kvm_regs r = vcpu.regs();
  const kvm_sregs s = vcpu.sregs();
  Fingerprint f;
  f.words = {r.rax, r.rbx,    r.rcx, r.rdx, r.rsi, r.rdi,  r.rsp,         r.rbp,
             r.r8,  r.r9,     r.r10, r.r11, r.r12, r.r13,  r.r14,         r.r15,
             r.rip, r.rflags, s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector, s.ss.selector};
  return f;
}

}  // namespace drvm::vmm::replay
