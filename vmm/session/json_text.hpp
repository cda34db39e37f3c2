// Appending JSON strings with the escapes RFC 8259 requires (specs and symbol names are user text).
#pragma once

#include <fmt/format.h>

#include <iterator>
#include <string_view>

namespace drvm::vmm::session {

inline void append_json_string(fmt::memory_buffer& out, std::string_view text) {
  auto it = std::back_inserter(out);
  out.push_back('"');
  for (const char ch : text) {
    switch (ch) {
      case '"':
        fmt::format_to(it, "\\\"");
        break;
      case '\\':
        fmt::format_to(it, "\\\\");
        break;
      case '\n':
        fmt::format_to(it, "\\n");
        break;
      case '\t':
        fmt::format_to(it, "\\t");
        break;
      case '\r':
        fmt::format_to(it, "\\r");
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          fmt::format_to(it, "\\u{:04x}", static_cast<unsigned>(ch));
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

}  // namespace drvm::vmm::session
