#include "harness/text_escape.hpp"

#include <algorithm>
#include <string>

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

namespace {

// The largest cut <= at that does not fall inside a UTF-8 sequence.
std::size_t utf8_boundary(std::string_view text, std::size_t at) {
  if (at >= text.size()) return text.size();
  std::size_t cut = at;
  // Continuation bytes are 10xxxxxx; step back over at most three of them.
  while (cut > 0 && at - cut < 3 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  return (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80 ? at : cut;
}

}  // namespace

std::string bounded_text(std::string_view text, std::size_t max_line, std::size_t max_total) {
  std::string out;
  out.reserve(std::min(text.size(), max_total) + 64);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t newline = text.find('\n', pos);
    const std::size_t end = newline == std::string_view::npos ? text.size() : newline;
    const std::string_view line = text.substr(pos, end - pos);
    if (line.size() > max_line) {
      const std::size_t keep = utf8_boundary(line, max_line);
      out.append(line.substr(0, keep));
      out += "... (" + std::to_string(line.size() - keep) + " more bytes)";
    } else {
      out.append(line);
    }
    if (newline != std::string_view::npos) out += '\n';
    pos = end + 1;
  }
  if (out.size() <= max_total) return out;
  // Keep the end (the last lines explain how a run ended), starting at a line.
  std::size_t start = out.size() - max_total;
  const std::size_t line_start = out.find('\n', start - 1);  // start may begin a line
  start = line_start == std::string::npos ? utf8_boundary(out, start) : line_start + 1;
  return "... (" + std::to_string(start) + " earlier bytes omitted)\n" + out.substr(start);
}

std::string shell_quote(std::string_view arg) {
  constexpr std::string_view kPlain =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@%=";
  if (!arg.empty() && arg.find_first_not_of(kPlain) == std::string_view::npos) {
    return std::string(arg);
  }
  std::string quoted = "'";
  for (const char c : arg) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

}  // namespace drvm::harness
