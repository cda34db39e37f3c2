#include "vmm/session/stat_report.hpp"

#include <iterator>

#include "bpcore/event_spec.hpp"
#include "vmm/session/json_text.hpp"

namespace drvm::vmm::session {

std::uint64_t EventStat::scaled() const {
  if (!counted()) return 0;
  if (!multiplexed()) return count;
  const unsigned __int128 product = static_cast<unsigned __int128>(count) * time_enabled_ns;
  return static_cast<std::uint64_t>((product + time_running_ns / 2) / time_running_ns);
}

double EventStat::running_percent() const {
  if (time_enabled_ns == 0) return 100.0;
  return 100.0 * static_cast<double>(time_running_ns) / static_cast<double>(time_enabled_ns);
}

std::string_view EventStat::state() const {
  if (place_failures != 0) return "error";
  if (!counted()) return "not counted";
  return multiplexed() ? "multiplexed" : "counted";
}

std::uint64_t StatReport::vcpu_total(unsigned vcpu) const {
  std::uint64_t total = 0;
  for (const EventStat& event : events) {
    if (vcpu < event.per_vcpu.size()) total += event.per_vcpu[vcpu];
  }
  return total;
}

std::string format_stat_table(const StatReport& report, std::string_view prefix) {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  const double ms = 1e-6;
  fmt::format_to(it, "{}stat for {}: {} vCPU{}, {} slots, {:.3f} s elapsed, {:.3f} s vCPU time\n",
                 prefix, report.image, report.vcpus, report.vcpus == 1 ? "" : "s", report.slots,
                 static_cast<double>(report.elapsed_ns) * 1e-9,
                 static_cast<double>(report.vcpu_time_ns) * 1e-9);
  fmt::format_to(it, "{}{:>16}  {:>11}  {:>11}  {:>16}  {:>7}  {}\n", prefix, "count", "enabled ms",
                 "running ms", "scaled", "running", "event");
  for (const EventStat& event : report.events) {
    const std::string scaled =
        !event.counted() ? "<not counted>"
                         : (event.multiplexed() ? fmt::format("{}", event.scaled()) : "-");
    fmt::format_to(it, "{}{:>16}  {:>11.2f}  {:>11.2f}  {:>16}  {:>6.1f}%  {}", prefix, event.count,
                   static_cast<double>(event.time_enabled_ns) * ms,
                   static_cast<double>(event.time_running_ns) * ms, scaled, event.running_percent(),
                   event.spec);
    if (event.period != 0) {
      fmt::format_to(it, "  ({} samples, period {})", event.samples, event.period);
    }
    if (report.vcpus > 1) {
      for (std::size_t v = 0; v < event.per_vcpu.size(); ++v) {
        fmt::format_to(it, "{}vCPU {}: {}", v == 0 ? "  [" : ", ", v, event.per_vcpu[v]);
      }
      out.push_back(']');
    }
    // Never silent: an event the manager could not place says so after its spec.
    if (event.place_failures != 0) {
      fmt::format_to(it, "  <{}: {}>", event.counted() ? "partly not counted" : "not counted",
                     event.not_placed);
    }
    out.push_back('\n');
  }
  for (unsigned v = 0; v < report.vcpus; ++v) {
    fmt::format_to(it, "{}vCPU {}: {} hits\n", prefix, v, report.vcpu_total(v));
  }
  return fmt::to_string(out);
}

std::string format_stat_json(const StatReport& report) {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  out.push_back('{');
  fmt::format_to(it, "\"image\":");
  append_json_string(out, report.image);
  fmt::format_to(it,
                 ",\"slots\":{},\"vcpus\":{},\"elapsed_ns\":{},\"vcpu_time_ns\":{},"
                 "\"rotation_interval_ns\":{}",
                 report.slots, report.vcpus, report.elapsed_ns, report.vcpu_time_ns,
                 report.rotation_interval_ns);
  fmt::format_to(it, ",\"events\":[");
  for (std::size_t i = 0; i < report.events.size(); ++i) {
    const EventStat& event = report.events[i];
    if (i != 0) out.push_back(',');
    fmt::format_to(it, "{{\"spec\":");
    append_json_string(out, event.spec);
    fmt::format_to(it, ",\"location\":");
    append_json_string(out, event.location);
    fmt::format_to(it,
                   ",\"address\":\"{:#x}\",\"length\":{},\"type\":\"{}\",\"pinned\":{},"
                   "\"exclusive\":{},\"vcpu\":",
                   event.address, event.length, bp::type_name(event.type), event.pinned,
                   event.exclusive);
    if (event.vcpu) {
      fmt::format_to(it, "{}", *event.vcpu);
    } else {
      fmt::format_to(it, "null");
    }
    fmt::format_to(it,
                   ",\"period\":{},\"count\":{},\"samples\":{},\"time_enabled_ns\":{},"
                   "\"time_running_ns\":{},\"scaled\":{},\"multiplexed\":{},\"counted\":{},"
                   "\"running_percent\":{:.2f}",
                   event.period, event.count, event.samples, event.time_enabled_ns,
                   event.time_running_ns, event.scaled(), event.multiplexed(), event.counted(),
                   event.running_percent());
    fmt::format_to(it, ",\"state\":\"{}\",\"place_failures\":{},\"not_placed\":", event.state(),
                   event.place_failures);
    if (event.place_failures != 0) {
      append_json_string(out, event.not_placed);
    } else {
      fmt::format_to(it, "null");
    }
    fmt::format_to(it, ",\"per_vcpu\":[");
    for (std::size_t v = 0; v < event.per_vcpu.size(); ++v) {
      fmt::format_to(it, "{}{}", v == 0 ? "" : ",", event.per_vcpu[v]);
    }
    fmt::format_to(it, "]}}");
  }
  fmt::format_to(it, "],\"per_vcpu\":[");
  for (unsigned v = 0; v < report.vcpus; ++v) {
    fmt::format_to(it, "{}{{\"vcpu\":{},\"hits\":{}}}", v == 0 ? "" : ",", v, report.vcpu_total(v));
  }
  fmt::format_to(it, "]}}\n");
  return fmt::to_string(out);
}

}  // namespace drvm::vmm::session
