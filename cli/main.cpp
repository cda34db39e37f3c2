// drvm: dispatches to the subcommands.
#include <cstdio>
#include <string_view>
#include <vector>

#include "commands.hpp"

namespace {

constexpr const char* kUsage =
    "usage: drvm <command> [options]\n"
    "       drvm help [COMMAND] | --help | -h | --version | -V\n"
    "\n"
    "commands:\n"
    "  run IMAGE [options]     boot a guest image (PVH ELF or ELF64) under KVM\n"
    "  probe [--json]          report what this host's KVM can do for debugging\n"
    "  test MANIFEST... [opts] run suites of guest images with expectations\n"
    "  replay RECORDING [opts] repeat a run that 'drvm run --recording' recorded\n"
    "  help [COMMAND]          show this list, or COMMAND's options (as 'drvm COMMAND --help')\n"
    "\n"
    "options:\n"
    "  -h, --help              show this list\n"
    "  -V, --version           print drvm's version\n"
    "\n"
    "'drvm <command> --help' lists a command's options; docs/user-guide.md has examples.\n";

using Command = int (*)(drvm::cli::Args);

Command find_command(std::string_view name) {
  if (name == "run") return drvm::cli::run_command;
  if (name == "probe") return drvm::cli::probe_command;
  if (name == "test") return drvm::cli::test_command;
  if (name == "replay") return drvm::cli::replay_command;
  return nullptr;
}

int unknown_command(std::string_view name) {
  std::fprintf(stderr, "drvm: unknown command '%.*s'; run 'drvm --help' for the list\n",
               static_cast<int>(name.size()), name.data());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view command = args.front();
  if (const Command run = find_command(command)) {
    return run(drvm::cli::Args{args.data() + 1, args.size() - 1});
  }
  if (command == "help" && args.size() >= 2) {
    // drvm help CMD: CMD's own help, exactly as 'drvm CMD --help' prints it.
    const Command run = find_command(args[1]);
    if (run == nullptr) return unknown_command(args[1]);
    static constexpr std::string_view kHelp[] = {"--help"};
    return run(drvm::cli::Args{kHelp});
  }
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "--version" || command == "-V") {
    std::puts("drvm " DRVM_VERSION);
    return 0;
  }
  return unknown_command(command);
}
