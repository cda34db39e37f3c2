// drvm run IMAGE [options]: boot a guest image under KVM until it writes the exit port, halts,
// faults or times out. Exit statuses: docs/architecture.md.
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cmdline/command_line.hpp"
#include "cmdline/numbers.hpp"
#include "commands.hpp"
#include "gdb_connect.hpp"
#include "gdbstub/gdb_server.hpp"
#include "qemu_spellings.hpp"
#include "stop_signals.hpp"
#include "vmm/boot/boot.hpp"
#include "vmm/boot/boot_layout.hpp"
#include "vmm/boot/boot_modules.hpp"
#include "vmm/boot/image.hpp"
#include "vmm/cpu_report.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/devices/serial.hpp"
#include "vmm/gdb/gdb_monitor.hpp"
#include "vmm/gdb/gdb_target.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/machine.hpp"
#include "vmm/probe/probe.hpp"
#include "vmm/replay/exit_log.hpp"
#include "vmm/replay/recording.hpp"
#include "vmm/run_outcome.hpp"
#include "vmm/session/counting_session.hpp"
#include "vmm/session/session_plan.hpp"

namespace drvm::cli {

namespace {

using cmdline::UsageError;

// --gdb [HOST:]PORT
struct GdbAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port
};

GdbAddress parse_gdb_address(std::string_view value) {
  GdbAddress address;
  std::string_view port = value;
  auto bad = [&value] {
    return UsageError(
        fmt::format("run: --gdb: '{}' is not [HOST:]PORT; give a port (0-65535, 0 picks a free "
                    "one), e.g. 1234, "
                    "0.0.0.0:1234 or [::1]:1234",
                    value));
  };
  if (value.starts_with('[')) {
    // An IPv6 literal in brackets, as in URLs: its own colons are not the port's.
    const auto close = value.find(']');
    if (close == std::string_view::npos || close == 1 || value.substr(close + 1, 1) != ":") {
      throw bad();
    }
    address.host = std::string(value.substr(1, close - 1));
    port = value.substr(close + 2);
  } else if (const auto colon = value.rfind(':'); colon != std::string_view::npos) {
    if (colon > 0) address.host = std::string(value.substr(0, colon));
    port = value.substr(colon + 1);
  }
  const std::optional<std::uint64_t> number = cmdline::parse_whole_number(port);
  if (!number || *number > 65535) throw bad();
  address.port = static_cast<std::uint16_t>(*number);
  return address;
}

// `drvm run` stopped by SIGINT/SIGTERM: where each vCPU was, in the register-dump format of the
// fault reports. The vCPU threads have ended, so their registers can be read.
std::string interrupted_report(vmm::Machine& machine, vmm::debug::DebugController& controller) {
  std::string report;
  for (std::size_t index = 0; index < machine.vcpu_count(); ++index) {
    try {
      vmm::CpuSnapshot cpu = vmm::capture_cpu_state(machine.vcpu(index).vcpu());
      // The guest's own DR6/DR7, not the slots the host programmed for its engines.
      const bp::GuestDebugRegs guest = controller.guest_debug_regs(static_cast<unsigned>(index));
      cpu.debugregs.dr6 = guest.dr6;
      cpu.debugregs.dr7 = guest.dr7;
      cpu.have_debugregs = true;
      report +=
          fmt::format("drvm: vCPU {} stopped at RIP {:#x}; registers:\n", index, cpu.regs.rip);
      report += vmm::format_cpu_report(cpu, machine.memory());
    } catch (const vmm::KvmError& error) {
      report += fmt::format("drvm: vCPU {}: registers unavailable: {}\n", index, error.what());
    }
  }
  return report;
}

struct RunOptions {
  std::uint64_t memory = 128ULL << 20;
  unsigned cpus = 1;
  std::string cmdline;
  std::vector<std::string> initrd;  // module specs "FILE[ ARGS]", in order
  std::string serial_file;
  std::optional<double> timeout;
  bool trace_io = false;
  bool exact = false;  // --exact: single-step and decode every instruction (dr-virtualization.md)
  bool help = false;
  std::optional<GdbAddress> gdb;
  bool gdb_no_wait = false;
  std::uint64_t history = 1024ULL << 20;  // --history: reverse execution's budget (0: off)
  std::string recording;                  // --recording FILE: write the run's recording there
  std::string replay;                     // drvm replay FILE: the recording this run repeats
  vmm::session::SessionOptions session;   // --event, --stat, --trace, ... (docs/events-guide.md)
};

// --mem's rule lives in cmdline/ (shared with manifests); the machine's limits must be the same.
static_assert(cmdline::kMinGuestMemory == vmm::layout::kMinMemory &&
              cmdline::kMaxGuestMemory == vmm::layout::kMaxMemory);

// `parse(value)`, with its NumberError given as run's usage error for `flag`.
template <typename Parse>
auto parse_number(const char* flag, const std::string& value, Parse parse) {
  try {
    return parse(value);
  } catch (const cmdline::NumberError& error) {
    throw UsageError(fmt::format("run: {}: {}", flag, error.what()));
  }
}

// The options drvm run and drvm replay share: output, time limit, engines, gdb.
void add_common_options(cmdline::CommandLine& line, RunOptions& options) {
  line.add_value(
      "--serial", "FILE",
      [&options](const std::string& value) {
        // QEMU's -serial stdio, and the usual '-': the default, stdout.
        options.serial_file = value == "stdio" || value == "-" ? "" : value;
      },
      "write the guest's serial output to FILE instead of stdout ('stdio' or '-': stdout)");
  line.add_value(
      "--timeout", "SEC",
      [&options](const std::string& value) {
        options.timeout = parse_number("--timeout", value, cmdline::parse_seconds);
      },
      "stop the guest after SEC seconds of wall time (status 4)");
  line.add_flag("--trace-io", &options.trace_io,
                "log unhandled port I/O and MMIO accesses to stderr");
  line.add_flag("--exact", &options.exact,
                "single-step and decode every guest instruction so that no debug-register "
                "access or breakpoint hit escapes (slow; the reference engine)");
  line.add_value(
      "--gdb", "[HOST:]PORT",
      [&options](const std::string& value) { options.gdb = parse_gdb_address(value); },
      "serve gdb's remote protocol (default host 127.0.0.1; port 0 picks a free one); the guest "
      "waits at its first instruction until gdb continues");
  line.add_flag("--gdb-no-wait", &options.gdb_no_wait,
                "with --gdb: let the guest run at once; gdb stops it when it attaches");
  line.add_value(
      "--history", "SIZE",
      [&options](const std::string& value) {
        options.history = parse_number("--history", value, [](std::string_view text) {
          return cmdline::parse_size(text, std::uint64_t{1} << 20);
        });
      },
      "with --gdb: memory reverse execution may keep for its snapshots (default 1024 MiB, "
      "K/M/G suffixes, a bare number is MiB; the oldest history goes first; 0 turns reverse "
      "execution off)");
}

void add_run_options(cmdline::CommandLine& line, RunOptions& options) {
  line.add_value(
      "--mem", "SIZE",
      [&options](const std::string& value) {
        options.memory = parse_number("--mem", value, cmdline::parse_guest_memory);
      },
      "guest RAM (default 128M): MiB as QEMU's -m, or with K/M/G; 2M-3G");
  line.add_value(
      "--cpus", "N",
      [&options](const std::string& value) {
        try {
          options.cpus = cmdline::parse_vcpu_count(value);  // shared with manifests' `cpus`
        } catch (const cmdline::NumberError& error) {
          throw UsageError(fmt::format("run: --cpus: {}", error.what()));
        }
      },
      "vCPUs (default 1), as QEMU's -smp N: vCPU 0 boots, the others wait for INIT and a "
      "startup IPI; 1-255, at most KVM's KVM_CAP_MAX_VCPUS");
  line.add_value(
      "--cmdline", "STR", [&options](const std::string& value) { options.cmdline = value; },
      "command line passed in hvm_start_info (PVH) or the Multiboot information");
  line.add_value(
      "--initrd", "MODULES",
      [&options](const std::string& value) {
        for (std::string& spec : vmm::split_initrd_option(value)) {
          options.initrd.push_back(std::move(spec));
        }
      },
      "boot modules \"FILE[ ARGS]\", comma-separated or repeated as QEMU's -initrd: the "
      "Multiboot module list, or the PVH start_info modlist");
  add_common_options(line, options);
  line.add_value(
      "--recording", "FILE", [&options](const std::string& value) { options.recording = value; },
      "write a recording of the run to FILE (image, arguments, the guest's inputs, how it "
      "ended); 'drvm replay FILE' repeats the run exactly, also on another machine (one vCPU)");
  vmm::session::add_session_options(line, options.session);
  line.add_flag("-h,--help", &options.help, "show this help");
}

void print_help(const cmdline::CommandLine& line) {
  fmt::print(stdout,
             "usage: drvm run IMAGE [options]\n"
             "\n"
             "Boots IMAGE (a PVH ELF, a Multiboot v1 image, or an ELF64 entered in long mode)\n"
             "under KVM, as qemu-system-x86_64 -kernel IMAGE does. The guest's COM1 output goes\n"
             "to stdout; drvm's messages go to stderr.\n"
             "\n"
             "options:\n{}"
             "\n"
             "exit status: (v << 1) | 1 when the guest writes v to port 0xf4; 2 usage or setup\n"
             "error; 4 timeout; 6 guest halted (a vCPU waits in HLT and no interrupt can come:\n"
             "interrupts disabled, or enabled with no local APIC timer armed, no PIT counting\n"
             "with IRQ 0 unmasked, and no COM1 receive interrupt with input still open); 8 triple\n"
             "fault; 10 internal error; 12 killed by gdb; 14 interrupted (SIGINT/SIGTERM: the\n"
             "vCPUs are stopped, their registers and the --stat counts printed; a second signal\n"
             "exits at once).\n"
             "Environment: DRVM_KVM_DEVICE overrides the KVM device path (default /dev/kvm).\n",
             line.option_help());
}

int report_setup_error(const std::string& message) {
  fmt::print(stderr, "drvm: {}\n", message);
  return vmm::status::kUsage;
}

}  // namespace

int run_guest(const RunOptions& options, const std::string& image_path);

int run_command(Args args) {
  RunOptions options;
  cmdline::CommandLine line("run");
  add_run_options(line, options);
  std::vector<std::string> positionals;
  try {
    positionals = line.parse(args);
  } catch (const UsageError& error) {
    // QEMU's spellings (-kernel, -m, -s, ...) are unknown options here: say what drvm calls them.
    return report_setup_error(qemu_spelling_hint(args).value_or(error.what()));
  }
  if (options.help) {
    print_help(line);
    return 0;
  }
  if (options.gdb_no_wait && !options.gdb) {
    return report_setup_error("run: --gdb-no-wait needs --gdb [HOST:]PORT; add --gdb");
  }
  if (positionals.size() != 1) {
    return report_setup_error(
        positionals.empty()
            ? "run: no image given; usage: drvm run IMAGE [options] (see drvm run --help)"
            : fmt::format("run: more than one image given ('{}', '{}'); give exactly one",
                          positionals[0], positionals[1]));
  }
  if (!options.recording.empty() && options.cpus != 1) {
    return report_setup_error(fmt::format(
        "run: --recording needs one vCPU (this run has --cpus {}); drop --cpus", options.cpus));
  }
  return run_guest(options, std::string(positionals.front()));
}

// Boots and runs the image: drvm run, and drvm replay with options.replay set.
int run_guest(const RunOptions& options, const std::string& image_path) {
  // Before any thread exists, so that every thread inherits the blocked SIGINT/SIGTERM.
  StopSignals stop_signals(vmm::status::kInterrupted);
  try {
    const vmm::BootImage image = vmm::read_image(image_path, options.memory);
    for (const std::string& warning : image.warnings)
      fmt::print(stderr, "drvm: warning: {}\n", warning);
    // Modules are read before KVM is touched: a bad --initrd is a usage error on any host.
    std::vector<vmm::BootModule> modules;
    for (const std::string& spec : options.initrd) {
      modules.push_back(vmm::read_boot_module(spec, options.memory));
    }
    vmm::check_boot_modules_fit(image, options.cmdline, modules, options.memory);
    vmm::Fd serial_file;
    if (!options.serial_file.empty()) {
      serial_file = vmm::Fd{
          ::open(options.serial_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
      if (!serial_file.valid()) {
        return report_setup_error(fmt::format("--serial: cannot open {}: {}; check the path",
                                              options.serial_file, std::strerror(errno)));
      }
    }
    vmm::MachineConfig config;
    config.memory_size = options.memory;
    config.vcpu_count = options.cpus;
    config.cmdline = options.cmdline;
    config.modules = std::move(modules);
    config.trace_io = options.trace_io;
    config.serial_out_fd = serial_file.valid() ? serial_file.get() : STDOUT_FILENO;
    // A replay's inputs come from its recording.
    config.serial_in_fd =
        options.replay.empty() && vmm::usable_serial_input(STDIN_FILENO) ? STDIN_FILENO : -1;
    config.log = stderr;
    // --event and --symbols: checked against the image before the machine (and KVM) exists.
    const vmm::session::SessionPlan session_plan(options.session, image, config.vcpu_count,
                                                 options.gdb.has_value());

    const vmm::System system = vmm::System::open();
    // KVM_CAP_MAX_VCPUS, or KVM_CAP_NR_VCPUS on kernels without it (KVM API doc, KVM_CREATE_VCPU).
    int max_vcpus = system.check_extension(KVM_CAP_MAX_VCPUS);
    if (max_vcpus <= 0) max_vcpus = system.check_extension(KVM_CAP_NR_VCPUS);
    if (max_vcpus > 0 && options.cpus > static_cast<unsigned>(max_vcpus)) {
      return report_setup_error(fmt::format(
          "run: --cpus {}: KVM on this host allows at most {} vCPUs per VM (KVM_CAP_MAX_VCPUS); "
          "give --cpus {} or fewer",
          options.cpus, max_vcpus, max_vcpus));
    }
    vmm::Machine machine(system, std::move(config));  // the modules are not copied
    machine.boot(image);
    // --recording and drvm replay: the guest's inputs, logged or fed back (first in the chain).
    std::optional<vmm::replay::ExitLog> exit_log;
    std::optional<vmm::replay::Recording> replaying;
    if (!options.recording.empty() || !options.replay.empty()) exit_log.emplace(machine);
    if (!options.replay.empty()) {
      replaying = vmm::replay::read_recording(options.replay, &*exit_log);
      exit_log->set_live_problem_handler([&machine](const std::string& why) {
        vmm::RunOutcome outcome;
        outcome.kind = vmm::RunOutcome::Kind::kInternalError;
        outcome.status = vmm::status::kInternal;
        outcome.report = fmt::format(
            "drvm: replay: the run left its recording: {}; the guest depends on something the "
            "recording does not hold (time, an interrupt's arrival)\n",
            why);
        machine.finish(std::move(outcome));
      });
    }
    // Always installed: the guest's own debug registers work only through it (MOV DR trapping,
    // emulated data breakpoints). The probe runs only when the controller first needs it.
    vmm::debug::DebugOptions debug_options;
    session_plan.configure(debug_options);
    debug_options.exact = options.exact;
    vmm::debug::DebugController controller(machine, vmm::debug::probe_on_demand(system),
                                           debug_options, &image);
    // The counting session shares the controller; destroyed before it (and after the gdb stub,
    // whose `monitor events` reads it).
    std::optional<vmm::session::CountingSession> session;
    // --gdb: the stub serves gdb on its own thread while the guest runs (docs/gdb.md). Destroyed
    // in reverse order: the server first, then the target, both before the controller.
    std::optional<vmm::GdbTarget> gdb_target;
    std::optional<gdbstub::GdbServer> gdb_server;
    if (session_plan.active()) session.emplace(controller, machine, session_plan);
    if (options.gdb) {
      gdb_target.emplace(machine, controller, !options.gdb_no_wait, options.history,
                         exit_log ? &*exit_log : nullptr);
      if (session) {
        gdb_target->set_session_events(
            [&session] { return vmm::format_session_events(session->report()); });
        gdb_target->set_session_counting([&session](bool live) { session->set_counting(live); });
      }
      gdbstub::ServerOptions server_options;
      server_options.host = options.gdb->host;
      server_options.port = options.gdb->port;
      try {
        gdb_server.emplace(*gdb_target, server_options);
      } catch (const gdbstub::GdbServerError& error) {
        const bool bad_host =
            std::string_view(error.what()).find("resolve") != std::string_view::npos;
        return report_setup_error(
            fmt::format("gdb: {}; {}", error.what(),
                        bad_host ? "give an address (127.0.0.1, 0.0.0.0) or a resolvable host name"
                                 : "choose another port or stop the program using it"));
      }
      fmt::print(stderr, "drvm: gdb: listening on {}; connect with: {}\n",
                 endpoint_text(options.gdb->host, gdb_server->port()),
                 gdb_connect_command(options.gdb->host, gdb_server->port(), image_path));
    }
    std::optional<std::chrono::duration<double>> timeout;
    if (options.timeout) timeout = std::chrono::duration<double>(*options.timeout);
    if (session) session->start();
    // SIGINT/SIGTERM: the run ends like a timeout, with the vCPUs stopped where they were.
    const StopSignals::ScopedHandler on_signal(stop_signals, [&machine](int signal) {
      vmm::RunOutcome interrupted;
      interrupted.kind = vmm::RunOutcome::Kind::kInterrupted;
      interrupted.status = vmm::status::kInterrupted;
      interrupted.report =
          fmt::format("drvm: interrupted by {}: stopped the guest\n", signal_name(signal));
      machine.finish(std::move(interrupted));
    });
    // The files as they are when the run starts (a rebuild during a long run must not change it).
    std::optional<vmm::replay::Recording> recording;
    if (!options.recording.empty()) {
      recording.emplace();
      recording->image = vmm::replay::describe_file(image_path);
      recording->memory = options.memory;
      recording->cmdline = options.cmdline;
      for (const std::string& spec : options.initrd) {
        recording->module_specs.push_back(spec);
        recording->modules.push_back(vmm::replay::describe_file(vmm::replay::module_file(spec)));
      }
    }
    vmm::RunOutcome outcome = machine.run(timeout);
    if (outcome.kind == vmm::RunOutcome::Kind::kInterrupted) {
      outcome.report += interrupted_report(machine, controller);
    }
    // An attached gdb hears how the run ended (W or X) before the server closes.
    if (gdb_target) gdb_target->finish_run(outcome, std::chrono::seconds(2));
    gdb_server.reset();
    std::fputs(outcome.report.c_str(), stderr);
    if (session && !session->finish()) return vmm::status::kUsage;
    // Lost output would make a CI check pass or fail on what it never saw: not the guest's status.
    if (recording) {
      recording->status = outcome.status;
      recording->ended = vmm::outcome_name(outcome.kind);
      try {
        vmm::replay::write_recording(options.recording, *recording, *exit_log);
        fmt::print(stderr, "drvm: recording: {} ({} guest exits); replay it with: drvm replay {}\n",
                   options.recording, exit_log->recorded(), options.recording);
      } catch (const vmm::replay::RecordingError& error) {
        fmt::print(stderr, "drvm: --recording: {}; check the path and free space\n", error.what());
        return vmm::status::kUsage;
      }
    }
    if (replaying && outcome.status != replaying->status &&
        outcome.kind != vmm::RunOutcome::Kind::kInternalError) {
      fmt::print(
          stderr, "drvm: replay: the run ended with status {} ({}), the recording with {} ({})\n",
          outcome.status, vmm::outcome_name(outcome.kind), replaying->status, replaying->ended);
    }
    if (const int error = machine.serial_write_error(); error != 0) {
      fmt::print(stderr,
                 "drvm: serial: the guest's output is incomplete: writing {} failed ({}); free "
                 "space or give another --serial file (the guest's own status was {})\n",
                 options.serial_file.empty() ? "stdout" : options.serial_file, std::strerror(error),
                 outcome.status);
      return vmm::status::kUsage;
    }
    return outcome.status;
  } catch (const vmm::SetupError& error) {
    return report_setup_error(error.what());
  } catch (const vmm::replay::RecordingError& error) {
    return report_setup_error(fmt::format("replay: {}", error.what()));
  } catch (const vmm::KvmError& error) {
    fmt::print(stderr, "drvm: KVM setup failed: {}; check dmesg and the host's KVM support\n",
               error.what());
    return vmm::status::kUsage;
  }
}

int replay_command(Args args) {
  RunOptions options;
  std::string recording_path;
  bool help = false;
  cmdline::CommandLine line("replay");
  add_common_options(line, options);
  line.add_flag("-h,--help", &help, "show this help");
  std::vector<std::string> positionals;
  try {
    positionals = line.parse(args);
  } catch (const UsageError& error) {
    return report_setup_error(error.what());
  }
  if (help) {
    fmt::print(
        stdout,
        "usage: drvm replay RECORDING [options]\n"
        "\n"
        "Repeats a run that 'drvm run --recording RECORDING' recorded: boots the same image\n"
        "(checked against its recorded size and checksum) with the same memory, command\n"
        "line and modules, and gives the guest the same inputs (serial input, device\n"
        "reads). The guest's output appears again and the run ends as the recorded one\n"
        "did; a run that leaves its recording stops with status 10 and says where.\n"
        "\n"
        "options:\n{}",
        line.option_help());
    return 0;
  }
  if (options.gdb_no_wait && !options.gdb) {
    return report_setup_error("replay: --gdb-no-wait needs --gdb [HOST:]PORT; add --gdb");
  }
  if (positionals.size() != 1) {
    return report_setup_error(
        "replay: give exactly one recording; usage: drvm replay RECORDING [options]");
  }
  recording_path = positionals.front();
  vmm::replay::Recording recording;
  try {
    recording = vmm::replay::read_recording(recording_path, nullptr);
  } catch (const vmm::replay::RecordingError& error) {
    return report_setup_error(
        fmt::format("replay: {}; give a file that drvm run --recording wrote", error.what()));
  }
  if (const auto differs = vmm::replay::check_recorded_files(recording)) {
    return report_setup_error(fmt::format(
        "replay: {}; replay where the recorded image and modules are, unchanged", *differs));
  }
  options.memory = recording.memory;
  options.cmdline = recording.cmdline;
  options.initrd = recording.module_specs;
  options.replay = recording_path;
  return run_guest(options, recording.image.path);
}

}  // namespace drvm::cli
