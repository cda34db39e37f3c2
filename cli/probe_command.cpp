// drvm probe [--json]: runs the capability probe and prints what this host's KVM does for
// debugging (docs/probe.md).
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cmdline/command_line.hpp"
#include "commands.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/probe/probe.hpp"
#include "vmm/probe/probe_report.hpp"

namespace drvm::cli {

namespace {

constexpr const char* kProbeUsage =
    "usage: drvm probe [--json]\n"
    "\n"
    "Runs tiny probe guests to find out what this host's KVM really does for debugging\n"
    "(hardware and guest breakpoints, single-step, INT3, read-only memslots, MMIO exits,\n"
    "immediate_exit, #DB injection) and prints one row per finding.\n"
    "\n"
    "options:\n";

}  // namespace

int probe_command(Args args) {
  bool json = false;
  bool help = false;
  cmdline::CommandLine line("probe");
  line.add_flag("--json", &json,
                "print one JSON object instead of the table (keys: docs/probe.md)");
  line.add_flag("-h,--help", &help, "show this help");
  try {
    const std::vector<std::string> positionals = line.parse(args);
    if (!positionals.empty()) {
      throw line.error(
          fmt::format("unexpected argument '{}'; probe takes only options (see drvm probe --help)",
                      positionals.front()));
    }
  } catch (const cmdline::UsageError& error) {
    std::fprintf(stderr, "drvm: %s\n", error.what());
    return 2;
  }
  if (help) {
    std::fputs(kProbeUsage, stdout);
    std::fputs(line.option_help().c_str(), stdout);
    return 0;
  }
  try {
    const vmm::System system = vmm::System::open();
    const vmm::ProbeResult result = vmm::run_probe(system);
    const std::string text =
        json ? vmm::format_probe_json(result) : vmm::format_probe_table(result);
    std::fputs(text.c_str(), stdout);
    return 0;
  } catch (const vmm::SetupError& failure) {
    std::fprintf(stderr, "drvm: %s\n", failure.what());
    return 2;
  } catch (const std::exception& failure) {
    std::fprintf(stderr, "drvm: probe: %s; check dmesg for KVM messages\n", failure.what());
    return 10;
  }
}

}  // namespace drvm::cli
