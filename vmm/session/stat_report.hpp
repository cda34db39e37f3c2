// The `--stat` result: per event its count, time enabled and running, the scaled estimate when it
// was multiplexed, per-vCPU counts; formatted as a perf-stat-like table or one JSON object
// (schema: docs/events-guide.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpcore/attributes.hpp"

namespace drvm::vmm::session {

struct EventStat {
  std::string spec;      // as given on the command line
  std::string location;  // the address as symbol+offset
  std::uint64_t address = 0;
  std::uint32_t length = 0;
  bp::BpType type = bp::BpType::kReadWrite;
  bool pinned = false;
  bool exclusive = false;
  std::optional<std::uint32_t> vcpu;
  std::uint64_t period = 0;
  std::uint64_t count = 0;
  std::uint64_t samples = 0;  // overflows (count / period)
  std::uint64_t time_enabled_ns = 0;
  std::uint64_t time_running_ns = 0;
  std::vector<std::uint64_t> per_vcpu;  // hits seen on each vCPU
  // Times the breakpoint manager could not place it (a pinned event in its error state) and
  // why, as a phrase for the report ("" when it was always placed).
  std::uint64_t place_failures = 0;
  std::string not_placed;

  // Ran for less than it was enabled (perf's multiplexing criterion).
  bool multiplexed() const { return time_running_ns < time_enabled_ns; }
  bool counted() const { return time_running_ns > 0; }
  // count * enabled / running, rounded; the count itself when not multiplexed; 0 if never ran.
  std::uint64_t scaled() const;
  // running / enabled in percent (100 when not multiplexed).
  double running_percent() const;
  // "counted", "multiplexed", "error" (could not be placed for part or all of the run) or
  // "not counted" (enabled but never on a slot).
  std::string_view state() const;
};

struct StatReport {
  std::string image;
  unsigned slots = 0;
  unsigned vcpus = 0;
  std::uint64_t elapsed_ns = 0;            // wall time from the guest's first run to the end
  std::uint64_t vcpu_time_ns = 0;          // CPU time of the vCPU threads over the same span
  std::uint64_t rotation_interval_ns = 0;  // multiplexing tick (0: nothing was multiplexed)
  std::vector<EventStat> events;

  std::uint64_t vcpu_total(unsigned vcpu) const;
};

// The table; every line starts with `line_prefix` ("drvm: " on stderr, "" in a file).
std::string format_stat_table(const StatReport& report, std::string_view line_prefix);
// One JSON object and a newline.
std::string format_stat_json(const StatReport& report);

}  // namespace drvm::vmm::session
