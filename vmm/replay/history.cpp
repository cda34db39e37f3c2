#include "vmm/replay/history.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdlib>

namespace drvm::vmm::replay {
namespace {

constexpr unsigned kVcpu = 0;

// DRVM_REPLAY_LOG=1: every recorded stop and every move on stderr (for debugging replays).
bool log_enabled() {
  static const bool enabled = std::getenv("DRVM_REPLAY_LOG") != nullptr;
  return enabled;
}

std::string describe(const SegmentEnd& end) {
  std::string text = fmt::format("hits {} steps {}", end.hits, end.steps);
  if (end.trigger) {
    text += fmt::format(" of {}@{:#x}/{}", static_cast<int>(end.trigger->kind),
                        end.trigger->address, end.trigger->length);
  }
  return text;
}

}  // namespace

History::History(Machine& machine, debug::DebugController& controller,
                 const HistoryOptions& options, ExitLog* log)
    : machine_(machine),
      controller_(controller),
      options_(options),
      own_log_(log ? nullptr : std::make_unique<ExitLog>(machine)),
      log_(log ? *log : *own_log_),
      replay_(std::make_unique<KvmReplayMachine>(machine, controller, log_)),
      navigator_(*replay_) {
  log_.set_problem_handler([this](bool end_of_log, const std::string& why) {
    replay_->on_exit_log_problem(end_of_log, why);
  });
  // A log of its own counts against the budget (a recording's log is the recording's).
  if (own_log_) own_log_->set_limit(static_cast<std::size_t>(options.budget_bytes));
  worker_ = std::thread([this] { worker_main(); });
}

History::~History() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  changed_.notify_all();
  replay_->interrupt();
  worker_.join();
}

std::optional<std::string> History::refusal() const {
  std::lock_guard lock(mutex_);
  if (refused_) return refused_;
  if (navigator_.stop_count() == 0) return "nothing is recorded yet";
  return std::nullopt;
}

HistoryStats History::stats() const {
  HistoryStats stats;
  stats.stops = navigator_.stop_count();
  if (stats.stops > 0) {
    stats.reachable = stats.stops - navigator_.oldest();
    for (std::size_t k = navigator_.oldest(); k < stats.stops; ++k) {
      if (navigator_.stop(k).snapshot) ++stats.snapshots;
    }
  }
  stats.bytes = replay_->bytes();
  stats.exit_log_bytes = log_.bytes();
  stats.exits_logged = log_.recorded();
  stats.budget_bytes = options_.budget_bytes;
  stats.in_past = in_past_.load();
  stats.refusal = refusal();
  return stats;
}

void History::refuse(std::string why) {
  {
    std::lock_guard lock(mutex_);
    if (!refused_) refused_ = std::move(why);
  }
  if (own_log_) own_log_->stop_recording();  // nothing will replay it
}

// ---------------------------------------------------------------------------------------------
// The live run

void History::live_stopped(const LiveStop& live) {
  if (refusal() && navigator_.stop_count() > 0) return;
  if (log_.exhausted()) {
    refuse(
        fmt::format("the history budget ({} MiB) was used up by the guest's exits; give "
                    "--history more",
                    options_.budget_bytes >> 20));
    return;
  }
  Vcpu& cpu = machine_.vcpu(kVcpu).vcpu();
  const irq::WakeCheck sources = machine_.interrupt_sources(kVcpu);
  if (sources.can_wake) {
    refuse(
        fmt::format("the guest can be interrupted ({}): drvm cannot replay when an interrupt "
                    "arrives",
                    sources.detail.substr(sources.detail.find("for ") == std::string::npos
                                              ? 0
                                              : sources.detail.find("for ") + 4)));
    return;
  }
  Stop stop;
  bool snapshot = navigator_.stop_count() == 0;
  switch (live.kind) {
    case LiveStop::Kind::kHit:
      stop.from_previous = SegmentEnd{live.trigger, 1, 0};
      break;
    case LiveStop::Kind::kStep:
      stop.from_previous = SegmentEnd{std::nullopt, 0, 1};
      break;
    case LiveStop::Kind::kInterrupt:
      stop.resolved = navigator_.stop_count() == 0;
      snapshot = true;  // found again by its state
      break;
    case LiveStop::Kind::kFault:
      if (navigator_.stop_count() > 0) {
        refuse("the guest faulted: drvm does not run backwards from a fault yet");
        return;
      }
      break;
  }
  const kvm_sregs sregs = cpu.sregs();
  stop.pc = sregs.cs.base + cpu.regs().rip;
  stop.landmarks = log_.landmarks();
  stop.fingerprint = fingerprint_of(cpu);
  stop.reported_here = replay_->reported_here();
  if (live.access && inside_string_instruction(stop.pc, *live.access)) {
    // Its breakpoints fired when the instruction began: going on does not fire them again.
    stop.reported_here = stop.pc;
    controller_.set_reported_breakpoint(kVcpu, stop.pc);
  }
  const auto now = std::chrono::steady_clock::now();
  if (navigator_.stop_count() - last_snapshot_stop_ >= options_.snapshot_every_stops ||
      now - last_snapshot_time_ >= options_.snapshot_every) {
    snapshot = true;
  }
  add_stop(stop, snapshot);
  position_ = Position{navigator_.present(), {}};
  if (log_enabled()) {
    fmt::print(stderr, "drvm: replay: stop {} at {:#x} after {} exits: {}{}{}\n",
               navigator_.present(), stop.pc, stop.landmarks, describe(stop.from_previous),
               stop.resolved ? "" : " (interrupted)", snapshot ? " (snapshot)" : "");
  }
}

void History::live_modified() {
  if (refusal()) return;
  // The present's state changed: a new stop with its own snapshot, zero instructions on.
  Vcpu& cpu = machine_.vcpu(kVcpu).vcpu();
  Stop stop;
  stop.pc = cpu.sregs().cs.base + cpu.regs().rip;
  stop.landmarks = log_.landmarks();
  stop.fingerprint = fingerprint_of(cpu);
  stop.reported_here = replay_->reported_here();
  add_stop(stop, true);
  position_ = Position{navigator_.present(), {}};
}

void History::add_stop(Stop stop, bool snapshot) {
  stop.snapshot = snapshot;
  const std::size_t index = navigator_.add_stop(stop);
  if (!snapshot) return;
  replay_->take_snapshot(index);
  last_snapshot_stop_ = index;
  last_snapshot_time_ = std::chrono::steady_clock::now();
  enforce_budget();
}

void History::enforce_budget() {
  while (replay_->bytes() > options_.budget_bytes) {
    // The next snapshot after the oldest becomes the start of history.
    std::optional<std::size_t> next;
    for (std::size_t k = navigator_.oldest() + 1; k < navigator_.stop_count(); ++k) {
      if (navigator_.stop(k).snapshot) {
        next = k;
        break;
      }
    }
    if (!next || *next == navigator_.present()) return;  // the present's own snapshot stays
    navigator_.drop_before(*next);
    replay_->drop_snapshots_before(*next);
  }
}

// Whether `pc` is a REP string instruction that made `access` and has iterations left: the stop is
// between two of its iterations.
bool History::inside_string_instruction(std::uint64_t pc, const debug::AccessInfo& access) {
  std::array<std::uint8_t, 15> bytes{};
  const std::size_t got = controller_.read_original(kVcpu, pc, bytes);
  bool rep = false;
  bool operand16 = false;
  bool rex_w = false;
  std::size_t i = 0;
  for (; i < got; ++i) {
    const std::uint8_t b = bytes[i];
    if (b == 0xf3 || b == 0xf2) {
      rep = true;
    } else if (b == 0x66) {
      operand16 = true;
    } else if (b == 0x67 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 ||
               b == 0x65) {
    } else if ((b & 0xf0) == 0x40 && (machine_.vcpu(kVcpu).vcpu().sregs().cs.l != 0)) {
      rex_w = (b & 0x08) != 0;
    } else {
      break;
    }
  }
  if (!rep || i >= got) return false;
  const std::uint8_t op = bytes[i];
  const bool byte_op = op == 0xa4 || op == 0xaa || op == 0xac || op == 0xa6 || op == 0xae ||
                       op == 0x6c || op == 0x6e;
  const bool wide_op = op == 0xa5 || op == 0xab || op == 0xad || op == 0xa7 || op == 0xaf ||
                       op == 0x6d || op == 0x6f;
  if (!byte_op && !wide_op) return false;
  const kvm_regs regs = machine_.vcpu(kVcpu).vcpu().regs();
  if (regs.rcx == 0) return false;
  const std::uint64_t size = byte_op ? 1 : rex_w ? 8 : operand16 ? 2 : 4;
  const bool down = (regs.rflags & (1u << 10)) != 0;  // DF
  // The element just done is one before RDI (destination) or RSI (source).
  const auto just_done = [&](std::uint64_t index) { return down ? index + size : index - size; };
  const kvm_sregs sregs = machine_.vcpu(kVcpu).vcpu().sregs();
  return access.linear == sregs.es.base + just_done(regs.rdi) ||
         access.linear == sregs.ds.base + just_done(regs.rsi);
}

// ---------------------------------------------------------------------------------------------
// Moves

void History::move(bool backward, bool step, std::vector<Trigger> watched,
                   std::function<void(const MoveResult&)> done) {
  replay_->clear_interrupt();  // a Ctrl-C meant for an earlier move
  moving_ = true;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back([this, backward, step, watched = std::move(watched), done = std::move(done)] {
      const MoveResult result = run_move(backward, step, watched);
      replay_->disarm();  // the replay's triggers must not fire in the live run
      moving_ = false;
      done(result);
    });
  }
  changed_.notify_all();
}

bool History::interrupt() {
  if (!moving_) return false;
  replay_->interrupt();
  return true;
}

void History::return_to_present() {
  if (!in_past_) return;
  replay_->restore(navigator_.present());
  log_.record();
  position_ = Position{navigator_.present(), {}};
  in_past_ = false;
}

MoveResult History::run_move(bool backward, bool step, const std::vector<Trigger>& watched) {
  const Position start = position_;
  const bool was_in_past = in_past_;
  MoveResult result;
  try {
    if (const auto why = refusal()) throw ReplayError(*why);
    if (!in_past_ && !backward) throw ReplayError("forward from the present runs live");
    const std::size_t present = navigator_.present();
    if (!in_past_ && !navigator_.stop(present).snapshot) {
      // Leaving the present: keep it exactly, to come back to it.
      replay_->take_snapshot(present);
      navigator_.set_snapshot(present);
    }
    Navigator::Found found;
    if (backward) {
      found = step ? navigator_.reverse_step(position_)
                   : navigator_.reverse_continue(position_, watched);
    } else {
      found = step ? navigator_.forward_step(position_, watched)
                   : navigator_.forward_continue(position_, watched);
    }
    position_ = found.where;
    if (log_enabled()) {
      fmt::print(stderr, "drvm: replay: {} {} from stop {} {} -> stop {} {}{}{}\n",
                 backward ? "reverse" : "forward", step ? "step" : "continue", start.stop,
                 describe(start.offset), position_.stop, describe(position_.offset),
                 found.history_start ? " (history start)" : "", found.present ? " (present)" : "");
    }
    if (found.trigger) {
      result.kind = MoveResult::Kind::kHit;
      result.trigger = watched.at(*found.trigger);
      result.data = found.data;
    } else if (found.history_start) {
      result.kind = MoveResult::Kind::kHistoryStart;
    } else if (found.present) {
      result.kind = MoveResult::Kind::kPresent;
    } else {
      result.kind = MoveResult::Kind::kStep;
    }
    const bool at_present = position_ == Position{present, {}};
    if (at_present) {
      replay_->restore(present);  // the exact present, devices included
      log_.record();
    }
    in_past_ = !at_present;
    return result;
  } catch (const std::exception& error) {
    const bool interrupted = replay_->clear_interrupt();
    result.why = error.what();
    if (log_enabled()) {
      fmt::print(stderr, "drvm: replay: {} {} from stop {} {} with {} triggers failed: {}\n",
                 backward ? "reverse" : "forward", step ? "step" : "continue", start.stop,
                 describe(start.offset), watched.size(), result.why);
      for (const Trigger& trigger : watched) {
        fmt::print(stderr, "drvm: replay:   trigger {}@{:#x}/{}\n", static_cast<int>(trigger.kind),
                   trigger.address, trigger.length);
      }
    }
    try {
      if (interrupted && was_in_past) {
        navigator_.reach(start);
        position_ = start;
        result.kind = MoveResult::Kind::kInterrupted;
        return result;
      }
      if (!interrupted && std::string_view(result.why) != "forward from the present runs live" &&
          !refusal()) {
        refuse("the replay failed: " + result.why);
      }
      if (in_past_ || was_in_past || navigator_.stop(navigator_.present()).snapshot) {
        replay_->restore(navigator_.present());
        log_.record();
      }
    } catch (const std::exception& again) {
      refuse(std::string("the replay failed: ") + again.what());
    }
    position_ = Position{navigator_.present(), {}};
    in_past_ = false;
    result.kind = interrupted ? MoveResult::Kind::kInterrupted : MoveResult::Kind::kFailed;
    return result;
  }
}

void History::worker_main() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return quit_ || !jobs_.empty(); });
    if (quit_) return;
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

}  // namespace drvm::vmm::replay
