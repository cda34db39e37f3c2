#include "gdb_connect.hpp"

#include <fmt/format.h>

namespace drvm::cli {

std::string endpoint_text(const std::string& host, unsigned port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

std::string shell_word(std::string_view text) {
  constexpr std::string_view kPlain =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@%=";
  if (!text.empty() && text.find_first_not_of(kPlain) == std::string_view::npos) {
    return std::string(text);
  }
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";  // close, an escaped quote, reopen
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string gdb_connect_command(const std::string& host, unsigned port, std::string_view image) {
  const std::string reach = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host;
  return fmt::format("gdb -ex 'target remote {}' {}", endpoint_text(reach, port),
                     shell_word(image));
}

}  // namespace drvm::cli
