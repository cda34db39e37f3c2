// drvm test: the CI regression harness (harness/). Cases run as child processes of this same
// executable's `run` subcommand.

#include <filesystem>
#include <system_error>

#include "commands.hpp"
#include "harness/session.hpp"

namespace drvm::cli {

int test_command(Args args) {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return harness::test_main(args, error ? std::filesystem::path("/proc/self/exe") : self);
}

}  // namespace drvm::cli
