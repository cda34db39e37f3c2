// drvm: dispatches to the subcommands.
#include <cstdio>
#include <string_view>
#include <vector>

#include "commands.hpp"

namespace {

constexpr const char* kUsage =
    "usage: drvm <command> [options]\n"
    "\n"
    "commands:\n"
    "  run IMAGE [options]     boot a guest image (PVH ELF or ELF64) under KVM\n"
    "  probe [--json]          report what this host's KVM can do for debugging\n"
    "  test MANIFEST... [opts] run suites of guest images with expectations\n"
    "\n"
    "'drvm <command> --help' lists a command's options; docs/user-guide.md has examples.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view command = args.front();
  const drvm::cli::Args rest{args.data() + 1, args.size() - 1};
  if (command == "run") return drvm::cli::run_command(rest);
  if (command == "probe") return drvm::cli::probe_command(rest);
  if (command == "test") return drvm::cli::test_command(rest);
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "--version") {
    std::puts("drvm " DRVM_VERSION);
    return 0;
  }
  std::fprintf(stderr, "drvm: unknown command '%.*s'; run 'drvm --help' for the list\n",
               static_cast<int>(command.size()), command.data());
  return 2;
}
