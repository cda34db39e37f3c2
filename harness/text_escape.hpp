// Guest serial output is arbitrary bytes. Reports (terminal, TAP, JUnit XML) need text: these
// functions keep valid UTF-8 and show every other byte, and every control character a format
// cannot carry, as the four characters \xNN.
#pragma once

#include <string>
#include <string_view>

namespace drvm::harness {

// For terminals and TAP: tab kept, newline kept when `keep_newlines`, other controls \xNN.
std::string printable_text(std::string_view bytes, bool keep_newlines);

// For XML 1.0 text and attribute values: the five markup characters as entities; tab, newline and
// carriage return as character references in attributes (&#9; &#10; &#13;) and as themselves
// (\r as &#13;) in text; characters XML 1.0 forbids (other C0 controls, U+FFFE, U+FFFF) and
// invalid UTF-8 as \xNN.
std::string xml_escape(std::string_view bytes, bool attribute);

// Bounds what a report embeds: every line longer than `max_line` bytes is cut to its first
// `max_line` bytes and "... (N more bytes)"; if the text is then still longer than `max_total`,
// only its last lines (up to `max_total` bytes) are kept, after a line "... (N earlier bytes
// omitted)". A cut never splits a UTF-8 sequence.
std::string bounded_text(std::string_view text, std::size_t max_line, std::size_t max_total);

// `arg` as one POSIX shell word: unchanged when it needs no quoting, else in single quotes.
std::string shell_quote(std::string_view arg);

}  // namespace drvm::harness
