#include "vmm/session/counting_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bpcore/rotation.hpp"
#include "bpcore/slot_layout.hpp"

namespace drvm::vmm::session {
namespace {

std::uint64_t ns_between(std::chrono::steady_clock::time_point from,
                         std::chrono::steady_clock::time_point to) {
  return to > from ? static_cast<std::uint64_t>(
                         std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count())
                   : 0;
}

constexpr std::uint64_t kRotationIntervalNs =
    std::chrono::duration_cast<std::chrono::nanoseconds>(kRotationInterval).count();

// a * b / c without overflow (c > 0).
std::uint64_t scale(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return static_cast<std::uint64_t>(static_cast<unsigned __int128>(a) * b / c);
}

std::string_view access_name(bp::Access access) {
  switch (access) {
    case bp::Access::kRead:
      return "r";
    case bp::Access::kWrite:
      return "w";
    case bp::Access::kExecute:
      return "x";
  }
  return "?";
}

std::FILE* open_output(const char* flag, const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    throw PlanError(fmt::format("{}: cannot open {}: {}; check the path and its directory", flag,
                                path, std::strerror(errno)));
  }
  return file;
}

// The manager's spec of a planned event (the overflow handler aside).
bp::EventSpec spec_of(const PlannedEvent& planned) {
  const bp::EventRequest& request = planned.request;
  bp::EventSpec spec;
  spec.attr = planned.attr;
  spec.binding = request.vcpu ? bp::Binding::target_on(debug::kSessionOwner, *request.vcpu)
                              : bp::Binding::target_all(debug::kSessionOwner);
  spec.pinned = request.pinned;
  spec.exclusive = request.exclusive;
  spec.sample_period = request.period;
  return spec;
}

}  // namespace

CountingSession::CountingSession(debug::DebugController& debug, Machine& machine,
                                 const SessionPlan& plan)
    : debug_(debug),
      plan_(plan),
      options_(plan.options()),
      symbols_(plan.symbols()),
      vcpus_(plan.vcpus()),
      slots_(debug.options().slots),
      per_vcpu_(plan.vcpus() * plan.events().size()),
      clock_(plan.vcpus()),
      progress_(std::make_unique<VcpuProgress[]>(plan.vcpus())),
      machine_(machine) {
  if (!options_.record.empty()) {
    record_file_.reset(open_output("--record", options_.record));
    record_ =
        std::make_unique<HitLog>(record_file_.get(), HitLog::Format::kRecord, symbols_, vcpus_);
  }
  if (options_.stat && !options_.stat_output.empty()) {
    stat_file_.reset(open_output("--stat-output", options_.stat_output));
  }
  if (options_.trace) {
    trace_ = std::make_unique<HitLog>(stderr, HitLog::Format::kTrace, symbols_, vcpus_);
  }

  // Flexible events share what the session's pinned events leave on the busiest vCPU (bpcore's
  // budget); beyond that they take turns (the manager's rotation, on vCPU time).
  const std::vector<PlannedEvent>& events = plan.events();
  std::vector<bp::EventSpec> pinned;
  std::size_t flexible = 0;
  for (const PlannedEvent& planned : events) {
    if (planned.request.pinned) {
      pinned.push_back(spec_of(planned));
    } else {
      ++flexible;
    }
  }
  const bp::SlotLayout host = bp::SlotLayout::mixed(slots_);
  const std::uint32_t budget = bp::flexible_budget(host, vcpus_, debug::kSessionOwner, 0, pinned);
  rotates_ = budget > 0 && flexible > budget;
  if (rotates_ && debug_.options().log != nullptr) {
    // Once, before the run: the user asked for counts and gets estimates.
    std::fprintf(debug_.options().log,
                 "drvm: %zu events on %u slots: counts are multiplexed (scaled estimates); raise "
                 "--slots or mark events pinned\n",
                 events.size(), slots_);
  }

  debug_.set_event_clock(&clock_);
  for (const PlannedEvent& planned : events) {
    auto event = std::make_unique<Event>();
    event->plan = planned;
    const bp::EventRequest& request = event->plan.request;
    bp::EventSpec spec = spec_of(event->plan);
    spec.on_overflow = bp::OverflowHandler{&CountingSession::on_overflow, event.get()};
    bp::Result<bp::EventId> id = debug_.create_event(spec);
    if (!id) {
      for (const auto& created : events_) (void)debug_.destroy_event(created->id);
      debug_.set_event_clock(nullptr);
      throw PlanError(fmt::format(
          "--event '{}': the breakpoint manager refused it: {}; {}", request.text,
          bp::error_message(id.error()),
          id.error() == bp::Error::kNoSpace
              ? "other pinned breakpoints hold the slots; make it flexible or raise --slots"
              : "check the spec"));
    }
    event->id = id.value();
    events_.push_back(std::move(event));
  }
  debug_.set_hit_callback(debug::kSessionOwner,
                          [this](const debug::HostHit& hit) { return on_hit(hit); });
  machine_.add_interceptor(*this, ChainPosition::kFirst);
}

CountingSession::~CountingSession() {
  stop_rotation();
  machine_.remove_interceptor(*this);
  debug_.set_hit_callback(debug::kSessionOwner, {});
  for (const auto& event : events_) (void)debug_.destroy_event(event->id);
  debug_.set_event_clock(nullptr);
}

void CountingSession::before_run(VcpuRunner& vcpu) {
  clock_.start(vcpu.index());
  if (rotates_) maybe_rotate(vcpu.index());
  // The controller, next in the chain, arms the scheduled events.
}

void CountingSession::entering_guest(VcpuRunner& vcpu) {
  VcpuProgress& progress = progress_[vcpu.index()];
  if (progress.entered) return;
  progress.entered = true;
  // The first entry starts the run's clock. A vCPU's events are armed at its own first entry,
  // which for an AP may come a little later (its thread starts after the BSP's): until every vCPU
  // has entered, an event bound to a later one was waiting for setup, not multiplexed.
  const unsigned entered = vcpus_entered_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (entered == 1) take_time_origin();
  if (entered == vcpus_ && vcpus_ > 1) take_setup_time();
}

std::optional<ExitAction> CountingSession::on_exit(VcpuRunner& vcpu, const VmExit&) {
  clock_.sample(vcpu.index());
  return std::nullopt;  // the controller, next in the chain, handles the exit
}

ExitAction CountingSession::on_interrupted(VcpuRunner& vcpu) {
  clock_.sample(vcpu.index());
  return ExitAction::kResume;  // the controller, next in the chain, is called as well
}

void CountingSession::maybe_rotate(unsigned vcpu) {
  // Ticks are counted on the summed vCPU time, and every vCPU turns its ring once per tick that
  // passed (at most once round the ring), so all of them hold the same window: a VM-wide event
  // is then either counting everywhere or nowhere, as its time running says.
  VcpuProgress& progress = progress_[vcpu];
  const std::uint64_t tick = clock_.now_ns() / kRotationIntervalNs;
  std::uint64_t turns = std::min<std::uint64_t>(tick - progress.ticks, events_.size());
  progress.ticks = tick;
  while (turns-- > 0 && debug_.rotate_flexible(vcpu)) {
  }
}

void CountingSession::set_counting(bool on) {
  if (counting_ == on) return;
  counting_ = on;
  // The clock stands still in between, so that neither the events' times nor the stat's vCPU
  // time include the replays: the events leave on the running clock and come back on it.
  if (on) clock_.go_on();
  for (const auto& event : events_) {
    (void)(on ? debug_.enable_event(event->id) : debug_.disable_event(event->id));
  }
  if (!on) clock_.hold();
}

void CountingSession::take_time_origin() {
  take_setup_time();
  time_origin_ = std::chrono::steady_clock::now();
  has_time_origin_.store(true, std::memory_order_release);
}

void CountingSession::take_setup_time() {
  // The events are on the entered vCPUs' slots now; whatever time they were enabled without
  // running so far was setup, not multiplexing. That time only grows, so the later reading wins
  // when the first and the last vCPU's entries race.
  std::lock_guard lock(setup_mutex_);
  for (const auto& event : events_) {
    if (const bp::Result<bp::EventReading> reading = debug_.read_event(event->id)) {
      event->setup_ns =
          std::max(event->setup_ns, reading.value().time_enabled - reading.value().time_running);
    }
  }
}

bp::HitAction CountingSession::on_overflow(void* context, const bp::Overflow&) {
  static_cast<Event*>(context)->samples.fetch_add(1, std::memory_order_relaxed);
  return bp::HitAction::kContinue;
}

bool CountingSession::on_hit(const debug::HostHit& hit) {
  std::size_t index = 0;
  while (index < events_.size() && events_[index]->id != hit.event) ++index;
  if (index == events_.size() || hit.vcpu >= vcpus_) return false;
  per_vcpu_[hit.vcpu * events_.size() + index].fetch_add(1, std::memory_order_relaxed);

  const Event& event = *events_[index];
  if ((trace_ == nullptr && record_ == nullptr) ||
      (event.plan.request.period != 0 && !hit.overflow)) {
    return false;
  }
  TraceHit line;
  line.vcpu = hit.vcpu;
  line.event = event.plan.request.text;
  line.count = hit.count;
  line.sample = hit.overflow;
  line.rip = hit.rip;
  const bp::BpAttr& watch = event.plan.attr;
  if (hit.access) {
    line.access = access_name(hit.access->type);
    line.address = hit.access->linear;
    line.size = hit.access->size;
    line.old_value = hit.access->old_value;
    line.new_value = hit.access->new_value;
  } else if (watch.type != bp::BpType::kExecute) {
    // A data hit whose engine did not see the access (a hardware data breakpoint): the watched
    // range, and the kind only when the condition tells it (x86 has write-only watches, but none
    // for reads alone).
    line.access = watch.type == bp::BpType::kWrite ? "w" : "rw";
    line.address = watch.addr;
    line.size = watch.len;
  } else {
    line.address = hit.rip;
  }
  if (trace_) trace_->add(line);
  if (record_) record_->add(line);
  return false;
}

void CountingSession::start() {
  if (rotates_) kick_thread_ = std::thread([this] { kick_loop(); });
}

void CountingSession::kick_loop() {
  std::vector<std::uint64_t> seen(vcpus_, 0);
  std::unique_lock lock(rotation_mutex_);
  while (!rotation_wake_.wait_for(lock, kRotationInterval, [this] { return stop_; })) {
    for (unsigned v = 0; v < vcpus_; ++v) {
      const std::uint64_t exits = clock_.samples(v);
      if (exits == seen[v]) machine_.vcpu(v).kick();  // back through before_run()
      seen[v] = exits;
    }
  }
}

void CountingSession::stop_rotation() {
  {
    std::lock_guard lock(rotation_mutex_);
    stop_ = true;
  }
  rotation_wake_.notify_all();
  if (kick_thread_.joinable()) kick_thread_.join();
}

StatReport CountingSession::report() {
  const auto now = finished_.value_or(std::chrono::steady_clock::now());
  const bool ran = has_time_origin_.load(std::memory_order_acquire);
  StatReport report;
  report.image = plan_.image_name();
  report.slots = slots_;
  report.vcpus = vcpus_;
  report.elapsed_ns = ran ? ns_between(time_origin_, now) : 0;
  report.vcpu_time_ns = clock_.now_ns();
  report.rotation_interval_ns = rotates_ ? kRotationIntervalNs : 0;
  for (std::size_t i = 0; i < events_.size(); ++i) {
    const Event& event = *events_[i];
    const bp::EventRequest& request = event.plan.request;
    EventStat stat;
    stat.spec = request.text;
    stat.location = symbols_.describe(event.plan.attr.addr);
    stat.address = event.plan.attr.addr;
    stat.length = event.plan.attr.len;
    stat.type = event.plan.attr.type;
    stat.pinned = request.pinned;
    stat.exclusive = request.exclusive;
    stat.vcpu = request.vcpu;
    stat.period = request.period;
    stat.samples = event.samples.load(std::memory_order_relaxed);
    stat.time_enabled_ns = report.vcpu_time_ns;
    if (const bp::Result<bp::EventReading> reading = debug_.read_event(event.id)) {
      stat.count = reading.value().value;
      stat.place_failures = reading.value().errors;
      if (stat.place_failures != 0) {
        const char* why = bp::place_error_text(reading.value().place_error);
        stat.not_placed = fmt::format(
            "{}{}(pinned event could not be placed; raise --slots{})", *why ? why : "",
            *why ? " " : "",
            reading.value().place_error == bp::PlaceError::kExclusive ? " or drop ,exclusive" : "");
      }
      // The manager's times, on the session's vCPU time: running only while on the slots
      // (multiplexed, or pushed off by another owner's events). Time in the error state counts
      // as enabled and not running, as the user enabled it; setup time does not count.
      const std::uint64_t enabled = reading.value().time_enabled + reading.value().time_error -
                                    std::min(event.setup_ns, reading.value().time_enabled);
      const std::uint64_t running = reading.value().time_running;
      stat.time_running_ns =
          running >= enabled ? stat.time_enabled_ns : scale(stat.time_enabled_ns, running, enabled);
    }
    for (unsigned vcpu = 0; vcpu < vcpus_; ++vcpu) {
      stat.per_vcpu.push_back(per_vcpu_[vcpu * events_.size() + i].load(std::memory_order_relaxed));
    }
    report.events.push_back(std::move(stat));
  }
  return report;
}

bool CountingSession::finish() {
  stop_rotation();
  debug_.set_hit_callback(debug::kSessionOwner, {});
  // Freeze every event's times together with the session's clock.
  for (const auto& event : events_) (void)debug_.disable_event(event->id);
  finished_ = std::chrono::steady_clock::now();
  bool ok = true;
  if (trace_) trace_->flush();
  if (record_) {
    record_->flush();
    if (!record_->ok() || std::fclose(record_file_.release()) != 0) {
      std::fprintf(stderr, "drvm: --record: writing %s failed: %s; check the disk space\n",
                   options_.record.c_str(), std::strerror(errno));
      ok = false;
    }
  }
  if (!options_.stat) return ok;
  const StatReport stat = report();
  std::FILE* out = stat_file_ ? stat_file_.get() : stderr;
  const std::string text =
      options_.json ? format_stat_json(stat) : format_stat_table(stat, stat_file_ ? "" : "drvm: ");
  const bool written = std::fwrite(text.data(), 1, text.size(), out) == text.size();
  if (stat_file_) {
    if (!written || std::fclose(stat_file_.release()) != 0) {
      std::fprintf(stderr, "drvm: --stat-output: writing %s failed: %s; check the disk space\n",
                   options_.stat_output.c_str(), std::strerror(errno));
      ok = false;
    }
  } else {
    std::fflush(stderr);
  }
  return ok;
}

}  // namespace drvm::vmm::session
