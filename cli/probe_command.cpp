// Placeholder until the probe subcommand lands (being written in this session).
#include <cstdio>

#include "commands.hpp"

namespace drvm::cli {
int probe_command(Args) {
  std::fputs("drvm: 'probe' is not built yet\n", stderr);
  return 2;
}
}  // namespace drvm::cli
