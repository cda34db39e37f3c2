// drvm test: the CI regression harness (harness/). Cases run as child processes of this same
// executable's `run` subcommand.

#include <filesystem>
#include <system_error>

#include "commands.hpp"
#include "harness/cancellation.hpp"
#include "harness/session.hpp"
#include "stop_signals.hpp"

namespace drvm::cli {

int test_command(Args args) {
  // SIGINT/SIGTERM: stop the children, report the unfinished cases as interrupted, write the
  // reports (docs/testing-guide.md). A second signal exits at once.
  StopSignals stop_signals(harness::kExitInterruptedBase + SIGINT);
  harness::Cancellation cancel;
  const StopSignals::ScopedHandler on_signal(stop_signals,
                                             [&cancel](int signal) { cancel.request(signal); });
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return harness::test_main(args, error ? std::filesystem::path("/proc/self/exe") : self, {},
                            &cancel);
}

}  // namespace drvm::cli
