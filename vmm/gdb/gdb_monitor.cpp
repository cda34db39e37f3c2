#include "vmm/gdb/gdb_monitor.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "bpcore/dr_encoding.hpp"
#include "vmm/probe/probe_report.hpp"

namespace drvm::vmm {
namespace {

constexpr std::string_view kHelp =
    "drvm monitor commands:\n"
    "  monitor dr      every debug slot of every vCPU (guest DR0-DR3, gdb, session): owner,\n"
    "                  address, type, length, engine\n"
    "  monitor events  gdb's breakpoints with their hit counts over the run, the --event\n"
    "                  events' counts, and the debug layer's counters\n"
    "  monitor history what reverse execution keeps: stops, snapshots, bytes of the budget\n"
    "  monitor probe   what the capability probe found on this host\n";

// An event not on the vCPU's slots yet: the engines arm it when the vCPU next enters the guest
// (a page that is not mapped then is retried at every CR3 change).
constexpr const char* kPending = "pending (armed when the vCPU runs)";

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

const char* type_name(bp::BpType type) {
  switch (type) {
    case bp::BpType::kExecute:
      return "execute";
    case bp::BpType::kWrite:
      return "write";
    case bp::BpType::kRead:
      return "read";
    case bp::BpType::kReadWrite:
      return "access";
  }
  return "?";
}

const char* dr7_type_name(bp::DrRw rw) {
  switch (rw) {
    case bp::DrRw::kExecute:
      return "execute";
    case bp::DrRw::kWrite:
      return "write";
    case bp::DrRw::kIo:
      return "io";
    case bp::DrRw::kReadWrite:
      return "access";
  }
  return "?";
}

const char* engine_text(debug::Engine engine) {
  return engine == debug::Engine::kNone ? kPending : debug::engine_name(engine);
}

const char* packet_name(gdbstub::BreakpointKind kind) {
  constexpr const char* kNames[] = {"Z0 break", "Z1 hbreak", "Z2 watch", "Z3 rwatch", "Z4 awatch"};
  return kNames[static_cast<int>(kind)];
}

std::string format_dr(Machine& machine, debug::DebugController& controller,
                      const std::vector<GdbBreakpoint>& breakpoints) {
  std::string out;
  for (std::size_t index = 0; index < machine.vcpu_count(); ++index) {
    const auto vcpu = static_cast<unsigned>(index);
    out += fmt::format("vCPU {} (thread {}):\n", vcpu, vcpu + 1);
    out += fmt::format("  {:<7} {:<10} {:<18} {:<8} {:<4} {}\n", "owner", "slot", "address", "type",
                       "len", "engine");
    const std::vector<debug::SlotInfo> slots = controller.slots(vcpu);
    // The guest's own DR0-DR3 as it programmed them, with the engine serving each enabled one.
    const bp::GuestDebugRegs regs = controller.guest_debug_regs(vcpu);
    for (unsigned dr = 0; dr < 4; ++dr) {
      const bp::Dr7Slot decoded = bp::decode_dr7_slot(regs.dr7, dr);
      const auto slot = std::find_if(slots.begin(), slots.end(), [dr](const debug::SlotInfo& s) {
        return s.owner == bp::kGuestTarget && s.guest_dr == dr;
      });
      out +=
          fmt::format("  {:<7} {:<10} {:#018x} {:<8} {:<4} {}\n", "guest", fmt::format("dr{}", dr),
                      regs.dr[dr], dr7_type_name(decoded.rw), decoded.len_bytes(),
                      !decoded.enabled()    ? "disabled"
                      : slot == slots.end() ? kPending
                                            : engine_text(slot->engine));
    }
    for (const GdbBreakpoint& breakpoint : breakpoints) {
      for (std::size_t i = 0; i < breakpoint.events.size(); ++i) {
        const bp::BpAttr& piece = breakpoint.pieces[i];
        const debug::Engine engine = controller.engine_of(vcpu, breakpoint.events[i]);
        out += fmt::format("  {:<7} {:<10} {:#018x} {:<8} {:<4} {}\n", "gdb",
                           packet_name(breakpoint.request.kind), piece.addr, type_name(piece.type),
                           piece.len, engine_text(engine));
      }
    }
    // Counting sessions (--event/--stat/--trace): the events on this vCPU's slots now.
    for (const debug::SlotInfo& slot : slots) {
      if (slot.owner != debug::kSessionOwner) continue;
      out += fmt::format("  {:<7} {:<10} {:#018x} {:<8} {:<4} {}\n", "session",
                         fmt::format("slot {}", slot.slot), slot.attr.addr,
                         type_name(slot.attr.type), slot.attr.len, engine_text(slot.engine));
    }
  }
  return out;
}

std::string format_events(Machine& machine, debug::DebugController& controller,
                          const MonitorState& state) {
  const std::vector<GdbBreakpoint>& breakpoints = state.breakpoints;
  std::size_t events = 0;
  for (const GdbBreakpoint& breakpoint : breakpoints) events += breakpoint.events.size();
  std::string out =
      fmt::format("gdb: {} breakpoints and watchpoints, {} events\n", breakpoints.size(), events);
  for (const GdbBreakpoint& breakpoint : breakpoints) {
    std::uint64_t hits = breakpoint.earlier_hits;
    std::string problem;  // the first piece that is not on the slots, and why
    for (const bp::EventId id : breakpoint.events) {
      const auto reading = controller.read_event(id);
      if (reading) hits += reading.value().value;
      const auto state = controller.event_state(id);
      if (problem.empty() && reading && state && state.value() == bp::EventState::kError) {
        const char* why = bp::place_error_text(reading.value().place_error);
        problem = fmt::format("  NOT PLACED: {}", *why ? why : "no slot");
      }
    }
    out +=
        fmt::format("  {:<10} {:#018x} len {:<3} hits {}{}\n", packet_name(breakpoint.request.kind),
                    breakpoint.request.address, breakpoint.request.length, hits, problem);
  }
  // gdb removes its breakpoints at every stop (unless `set breakpoint always-inserted on`) and
  // re-inserts them when it resumes: their counts are still the run's.
  for (const RemovedBreakpoint& removed : state.removed) {
    out += fmt::format("  {:<10} {:#018x} len {:<3} hits {} (not inserted now)\n",
                       packet_name(removed.request.kind), removed.request.address,
                       removed.request.length, removed.hits);
  }
  if (state.session_events) out += state.session_events();
  for (std::size_t index = 0; index < machine.vcpu_count(); ++index) {
    const auto vcpu = static_cast<unsigned>(index);
    const debug::DebugCounters c = controller.counters(vcpu);
    out += fmt::format(
        "vCPU {}: {} VM exits, {} debug exits, {} single steps, {} protected-page accesses, "
        "{} trap exits, {} MOV DR emulated, {} host hits, {} #DB to the guest, "
        "{} untrapped DR changes, {} re-arms\n",
        vcpu, machine.vcpu(index).counters().total, c.debug_exits, c.single_steps,
        c.protected_accesses, c.trap_exits, c.dr_emulations, c.host_hits, c.guest_debug_exceptions,
        c.untrapped_dr_changes, c.rearms);
  }
  return out;
}

std::string mib(std::uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

// Exact byte counts beside the MiB, so a script (bench/gdb/reverse_bench.cpp) can read them.
std::string format_history(Machine& machine, const replay::History* history) {
  if (!history) {
    return machine.vcpu_count() > 1
               ? fmt::format("reverse execution: off ({} vCPUs; it needs --cpus 1)\n",
                             machine.vcpu_count())
               : std::string("reverse execution: off (--history 0)\n");
  }
  const replay::HistoryStats stats = history->stats();
  std::string out =
      fmt::format("reverse execution: {}{}\n", stats.refusal ? "refused: " + *stats.refusal : "on",
                  stats.in_past ? " (gdb stands in the past)" : "");
  out += fmt::format("stops: {} recorded, {} reachable\n", stats.stops, stats.reachable);
  out += fmt::format("snapshots: {}\n", stats.snapshots);
  out += fmt::format("bytes: {} ({}) of the {} budget, exit log {} ({} exits)\n", stats.bytes,
                     mib(stats.bytes), mib(stats.budget_bytes), stats.exit_log_bytes,
                     stats.exits_logged);
  return out;
}

}  // namespace

std::string format_session_events(const session::StatReport& report) {
  std::string out = fmt::format("--event: {} event{}\n", report.events.size(),
                                report.events.size() == 1 ? "" : "s");
  for (const session::EventStat& event : report.events) {
    out += fmt::format("  {:<24} {:<24} count {}", event.spec, event.location, event.count);
    if (event.multiplexed()) out += fmt::format(" (scaled {})", event.scaled());
    const std::string_view state = event.state();
    if (state != "counted") out += fmt::format(" [{}]", state);
    out += '\n';
  }
  return out;
}

std::string run_monitor_command(std::string_view command, Machine& machine,
                                debug::DebugController& controller, const MonitorState& state) {
  const std::string_view name = trim(command);
  if (name == "dr") return format_dr(machine, controller, state.breakpoints);
  if (name == "events") return format_events(machine, controller, state);
  if (name == "history") return format_history(machine, state.history);
  if (name == "probe") return format_probe_table(controller.probe());
  if (name == "help" || name.empty()) return std::string(kHelp);
  return fmt::format("unknown monitor command '{}'\n{}", name, kHelp);
}

}  // namespace drvm::vmm
