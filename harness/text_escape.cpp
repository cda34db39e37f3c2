#include "harness/text_escape.hpp"

#include <fmt/format.h>

#include <cstdint>

namespace drvm::harness {
namespace {

// Length of the valid UTF-8 sequence at the start of `s` and its code point; 0 when invalid.
std::size_t utf8_sequence(std::string_view s, char32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  const std::uint8_t lead = byte(0);
  std::size_t length;
  char32_t min;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  } else if ((lead & 0xe0) == 0xc0) {
    length = 2, min = 0x80, code_point = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3, min = 0x800, code_point = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4, min = 0x10000, code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3f);
  }
  const bool surrogate = code_point >= 0xd800 && code_point <= 0xdfff;
  if (code_point < min || code_point > 0x10ffff || surrogate) return 0;
  return length;
}

void append_hex(std::string& out, std::string_view bytes) {
  for (const char ch : bytes) out += fmt::format("\\x{:02x}", static_cast<std::uint8_t>(ch));
}

// Walks `bytes` code point by code point; `emit` appends a valid code point's text or returns
// false to have its bytes shown as \xNN.
template <typename Emit>
std::string transcode(std::string_view bytes, Emit emit) {
  std::string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    char32_t code_point = 0;
    std::size_t length = utf8_sequence(bytes, code_point);
    const std::string_view sequence = bytes.substr(0, length ? length : 1);
    if (!length || !emit(out, code_point, sequence)) append_hex(out, sequence);
    bytes.remove_prefix(sequence.size());
  }
  return out;
}

bool is_control(char32_t c) {
  return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0);
}

}  // namespace

std::string printable_text(std::string_view bytes, bool keep_newlines) {
  return transcode(bytes, [&](std::string& out, char32_t c, std::string_view sequence) {
    if (is_control(c) && c != '\t' && !(keep_newlines && c == '\n')) return false;
    out += sequence;
    return true;
  });
}

std::string xml_escape(std::string_view bytes, bool attribute) {
  return transcode(bytes, [&](std::string& out, char32_t c, std::string_view sequence) {
    switch (c) {
      case '&':
        out += "&amp;";
        return true;
      case '<':
        out += "&lt;";
        return true;
      case '>':
        out += "&gt;";
        return true;
      case '"':
        out += "&quot;";
        return true;
      case '\'':
        out += "&apos;";
        return true;
      case '\r':
        out += "&#13;";
        return true;
      case '\t':
      case '\n':
        out += attribute ? fmt::format("&#{};", static_cast<int>(c)) : std::string(sequence);
        return true;
      default:
        break;
    }
    if (c < 0x20 || c == 0xfffe || c == 0xffff) return false;
    out += sequence;
    return true;
  });
}

}  // namespace drvm::harness
