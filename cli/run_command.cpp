// Placeholder until the run subcommand lands (being written in this session).
#include <cstdio>

#include "commands.hpp"

namespace drvm::cli {
int run_command(Args) {
  std::fputs("drvm: 'run' is not built yet\n", stderr);
  return 2;
}
}  // namespace drvm::cli
