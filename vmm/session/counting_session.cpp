#include "vmm/session/counting_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace drvm::vmm::session {
namespace {

std::uint64_t ns_between(std::chrono::steady_clock::time_point from,
                         std::chrono::steady_clock::time_point to) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

char access_letter(bp::Access access) {
  switch (access) {
    case bp::Access::kRead: return 'r';
    case bp::Access::kWrite: return 'w';
    case bp::Access::kExecute: return 'x';
  }
  return '?';
}

std::FILE* open_output(const char* flag, const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    throw PlanError(fmt::format("{}: cannot open {}: {}; check the path and its directory", flag,
                                path, std::strerror(errno)));
  }
  return file;
}

}  // namespace

CountingSession::CountingSession(debug::DebugController& debug, const SessionPlan& plan)
    : debug_(debug),
      plan_(plan),
      options_(plan.options()),
      symbols_(plan.symbols()),
      vcpus_(plan.vcpus()),
      slots_(debug.options().slots),
      per_vcpu_(plan.vcpus() * plan.events().size()) {
  const std::vector<PlannedEvent>& events = plan.events();
  if (!options_.record.empty()) {
    record_file_.reset(open_output("--record", options_.record));
    record_ = std::make_unique<HitLog>(record_file_.get(), HitLog::Format::kRecord, symbols_,
                                       vcpus_);
  }
  if (options_.stat && !options_.stat_output.empty()) {
    stat_file_.reset(open_output("--stat-output", options_.stat_output));
  }
  if (options_.trace) {
    trace_ = std::make_unique<HitLog>(stderr, HitLog::Format::kTrace, symbols_, vcpus_);
  }

  // Flexible events share what the session's pinned events leave on the busiest vCPU; beyond
  // that they take turns (see RotationSchedule).
  std::size_t most_pinned = 0;
  for (unsigned vcpu = 0; vcpu < vcpus_; ++vcpu) {
    const auto pinned = std::count_if(events.begin(), events.end(), [vcpu](const PlannedEvent& e) {
      return e.request.pinned && (!e.request.vcpu || *e.request.vcpu == vcpu);
    });
    most_pinned = std::max(most_pinned, static_cast<std::size_t>(pinned));
  }
  const std::size_t flexible = static_cast<std::size_t>(std::count_if(
      events.begin(), events.end(), [](const PlannedEvent& e) { return !e.request.pinned; }));
  const std::size_t capacity = slots_ > most_pinned ? slots_ - most_pinned : 0;
  schedule_ = RotationSchedule(flexible, capacity);

  for (const PlannedEvent& planned : events) {
    auto event = std::make_unique<Event>();
    event->plan = planned;
    const EventRequest& request = event->plan.request;
    if (!request.pinned && schedule_.rotates()) {
      event->rotated = true;
      rotated_.push_back(events_.size());
    }
    bp::EventSpec spec;
    spec.attr = event->plan.attr;
    spec.binding = request.vcpu ? bp::Binding::target_on(debug::kSessionOwner, *request.vcpu)
                                : bp::Binding::target_all(debug::kSessionOwner);
    spec.pinned = request.pinned;
    spec.exclusive = request.exclusive;
    spec.disabled = event->rotated;  // start() enables the first window
    spec.sample_period = request.period;
    spec.on_overflow = bp::OverflowHandler{&CountingSession::on_overflow, event.get()};
    bp::Result<bp::EventId> id = debug_.create_event(spec);
    if (!id) {
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
}

CountingSession::~CountingSession() {
  stop_rotation();
  debug_.set_hit_callback(debug::kSessionOwner, {});
  for (const auto& event : events_) {
    // The controller may already be tearing the machine down; nothing to report then.
    (void)debug_.destroy_event(event->id);
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
  if (hit.access) {
    line.access = access_letter(hit.access->type);
    line.address = hit.access->linear;
    line.size = hit.access->size;
    line.old_value = hit.access->old_value;
    line.new_value = hit.access->new_value;
  } else {
    line.access = 'x';
    line.address = hit.rip;
    line.size = 1;
  }
  if (trace_) trace_->add(line);
  if (record_) record_->add(line);
  return false;
}

void CountingSession::start() {
  started_ = std::chrono::steady_clock::now();
  if (!schedule_.rotates()) return;
  for (std::size_t position = 0; position < rotated_.size(); ++position) {
    if (schedule_.enabled_at_start(position)) {
      (void)debug_.enable_event(events_[rotated_[position]]->id);
    }
  }
  rotation_thread_ = std::thread([this] { rotation_loop(); });
}

void CountingSession::rotation_loop() {
  std::unique_lock lock(rotation_mutex_);
  while (!rotation_wake_.wait_for(lock, kRotationInterval, [this] { return stop_; })) {
    const RotationSchedule::Step step = schedule_.next();
    // Leave first, then join, so the joining event finds the freed slot.
    (void)debug_.disable_event(events_[rotated_[step.disable]]->id);
    (void)debug_.enable_event(events_[rotated_[step.enable]]->id);
  }
}

void CountingSession::stop_rotation() {
  {
    std::lock_guard lock(rotation_mutex_);
    stop_ = true;
  }
  rotation_wake_.notify_all();
  if (rotation_thread_.joinable()) rotation_thread_.join();
}

StatReport CountingSession::report() {
  const auto now = finished_.value_or(std::chrono::steady_clock::now());
  StatReport report;
  report.image = plan_.image_name();
  report.slots = slots_;
  report.vcpus = vcpus_;
  report.elapsed_ns = ns_between(started_, now);
  report.rotation_interval_ns =
      schedule_.rotates()
          ? static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(kRotationInterval).count())
          : 0;
  for (std::size_t i = 0; i < events_.size(); ++i) {
    const Event& event = *events_[i];
    const EventRequest& request = event.plan.request;
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
    if (const bp::Result<bp::EventReading> reading = debug_.read_event(event.id)) {
      stat.count = reading.value().value;
      stat.time_enabled_ns = reading.value().time_enabled;
      stat.time_running_ns = reading.value().time_running;
    }
    if (event.rotated) {
      // The manager only saw the turns this session gave it; the user enabled it all along.
      stat.time_enabled_ns = std::max(report.elapsed_ns, stat.time_running_ns);
    }
    for (unsigned vcpu = 0; vcpu < vcpus_; ++vcpu) {
      stat.per_vcpu.push_back(
          per_vcpu_[vcpu * events_.size() + i].load(std::memory_order_relaxed));
    }
    report.events.push_back(std::move(stat));
  }
  return report;
}

bool CountingSession::finish() {
  stop_rotation();
  debug_.set_hit_callback(debug::kSessionOwner, {});
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
