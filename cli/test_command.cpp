// Placeholder until the test subcommand lands (being written in this session).
#include <cstdio>

#include "commands.hpp"

namespace drvm::cli {
int test_command(Args) {
  std::fputs("drvm: 'test' is not built yet\n", stderr);
  return 2;
}
}  // namespace drvm::cli
