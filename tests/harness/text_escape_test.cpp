#include "harness/text_escape.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace drvm::harness {
namespace {

TEST(TextEscape, BoundedTextCutsLongLines) {
  EXPECT_EQ(bounded_text("short\n" + std::string(10, 'x') + "\nend", 4, SIZE_MAX),
            "shor... (1 more bytes)\nxxxx... (6 more bytes)\nend");
  EXPECT_EQ(bounded_text("abc\n", 4, SIZE_MAX), "abc\n");
  // Never inside a UTF-8 sequence: "é" is two bytes.
  EXPECT_EQ(bounded_text("a\xc3\xa9z", 2, SIZE_MAX), "a... (3 more bytes)");
}

TEST(TextEscape, BoundedTextKeepsTheLastLinesWithinTheTotal) {
  EXPECT_EQ(bounded_text("line 1\nline 2\nline 3\n", 100, 14),
            "... (7 earlier bytes omitted)\nline 2\nline 3\n");
  EXPECT_EQ(bounded_text("line 1\nline 2\n", 100, 100), "line 1\nline 2\n");
}

TEST(TextEscape, ShellQuoteMakesOneWord) {
  EXPECT_EQ(shell_quote("/usr/bin/drvm"), "/usr/bin/drvm");
  EXPECT_EQ(shell_quote("mem:counter:w"), "mem:counter:w");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(TextEscape, PrintableKeepsUtf8AndEscapesTheRest) {
  EXPECT_EQ(printable_text("a\tb\n", true), "a\tb\n");
  EXPECT_EQ(printable_text("a\tb\n", false), "a\tb\\x0a");
  EXPECT_EQ(printable_text("\x1b[1m\x7f", false), "\\x1b[1m\\x7f");
  EXPECT_EQ(printable_text("caf\xc3\xa9 \xe2\x9c\x93", false), "caf\xc3\xa9 \xe2\x9c\x93");
  EXPECT_EQ(printable_text("\xff\xc3", false), "\\xff\\xc3");           // invalid, truncated
  EXPECT_EQ(printable_text("\xc0\xaf", false), "\\xc0\\xaf");           // overlong
  EXPECT_EQ(printable_text("\xed\xa0\x80", false), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(printable_text("\xc2\x85", false), "\\xc2\\x85");           // C1 control
  EXPECT_EQ(printable_text(std::string_view("\0", 1), false), "\\x00");
}

TEST(TextEscape, XmlTextAndAttributes) {
  EXPECT_EQ(xml_escape("<a href=\"x\">&'</a>", false),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
  EXPECT_EQ(xml_escape("l1\r\nl2\t", false), "l1&#13;\nl2\t");
  EXPECT_EQ(xml_escape("l1\r\nl2\t", true), "l1&#13;&#10;l2&#9;");
  EXPECT_EQ(xml_escape("\x01\x1b\x08", false), "\\x01\\x1b\\x08");
  EXPECT_EQ(xml_escape("\xef\xbf\xbe", false), "\\xef\\xbf\\xbe");  // U+FFFE
  EXPECT_EQ(xml_escape("\x7f\xc2\x85", false), "\x7f\xc2\x85");     // legal in XML 1.0
  EXPECT_EQ(xml_escape("\xfe", true), "\\xfe");
}

}  // namespace
}  // namespace drvm::harness
