/* selftest.elf, formatting: guest_printf's engine, checked through guest_snprintf. */
#include "guestfw/guestfw.h"
#include "guestfw/test.h"

#define ASSERT_FORMATS(expected, ...)                                      \
  do {                                                                     \
    char buffer[96];                                                       \
    const int length = guest_snprintf(buffer, sizeof buffer, __VA_ARGS__); \
    GUEST_ASSERT_STREQ(buffer, expected);                                  \
    GUEST_ASSERT_EQ(length, strlen(expected));                             \
  } while (0)

GUEST_TEST(format_signed_decimal) {
  ASSERT_FORMATS("0 -1 42", "%d %d %i", 0, -1, 42);
  ASSERT_FORMATS("-2147483648 2147483647", "%d %d", (int)0x80000000, 0x7fffffff);
  ASSERT_FORMATS("-9223372036854775808", "%ld", (long)0x8000000000000000ULL);
  ASSERT_FORMATS("-5 -7", "%lld %hhd", -5LL, -7);
}

GUEST_TEST(format_unsigned_and_hex) {
  ASSERT_FORMATS("4294967295 18446744073709551615", "%u %lu", 0xffffffffu, ~0UL);
  ASSERT_FORMATS("deadbeef DEADBEEF 0xff 0", "%x %X %#x %#x", 0xdeadbeefu, 0xdeadbeefu, 0xff, 0);
  ASSERT_FORMATS("ffffffffffffffff 123456789a", "%llx %lx", ~0ULL, 0x123456789aUL);
  ASSERT_FORMATS("ff ffff 42", "%hhx %hx %zu", 0x1ff, 0x1ffff, (size_t)42);
}

GUEST_TEST(format_width_and_padding) {
  ASSERT_FORMATS("0000beef 00000000000001ab", "%08x %016lx", 0xbeef, 0x1abUL);
  ASSERT_FORMATS("[   42] [42   ] [-0042] [  -42]", "[%5d] [%-5d] [%05d] [%5d]", 42, 42, -42, -42);
  ASSERT_FORMATS("[  007] [0x00ff]", "[%5.3d] [%#06x]", 7, 0xff);
  ASSERT_FORMATS("[    7]", "[%*d]", 5, 7);
}

GUEST_TEST(format_strings_chars_pointers) {
  ASSERT_FORMATS("[abc] [  abc] [abc  ] [ab]", "[%s] [%5s] [%-5s] [%.2s]", "abc", "abc", "abc",
                 "abc");
  ASSERT_FORMATS("x [ y] 100%", "%c [%2c] 100%%", 'x', 'y');
  ASSERT_FORMATS("0x00000000001000ab", "%p", (void*)0x1000ab);
  const char* volatile null_string = NULL; /* hidden from gcc's format checker */
  ASSERT_FORMATS("(null)", "%s", null_string);
}

GUEST_TEST(format_snprintf_truncates) {
  char buffer[8];
  memset(buffer, 'z', sizeof buffer);
  GUEST_ASSERT_EQ(guest_snprintf(buffer, sizeof buffer, "%s-%d", "truncated", 12345), 15);
  GUEST_ASSERT_STREQ(buffer, "truncat");
  GUEST_ASSERT_EQ(guest_snprintf(buffer, 0, "%d", 7), 1);
  GUEST_ASSERT_EQ(buffer[0], 't'); /* size 0 writes nothing */
}
