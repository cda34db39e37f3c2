#include "gdb_connect.hpp"

#include <fmt/format.h>

#include "harness/text_escape.hpp"

namespace drvm::cli {

std::string endpoint_text(const std::string& host, unsigned port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

std::string gdb_connect_command(const std::string& host, unsigned port, std::string_view image) {
  const std::string reach = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host;
  return fmt::format("gdb -ex 'target remote {}' {}", endpoint_text(reach, port),
                     harness::shell_quote(image));
}

}  // namespace drvm::cli
