/* printf-style formatting for guest code.
 *
 * Conversions: %d %i %u %x %X %c %s %p %%. Flags: '-' (left-align), '0' (zero padding), '#' (0x
 * prefix for %x). Width and precision as digits or '*'; precision is the minimum number of digits
 * for integers and the maximum length for %s. Length modifiers: hh h l ll z j. %p prints "0x" and
 * 16 hex digits. A NULL %s prints "(null)". */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#define GUESTFW_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))

/* Sends each formatted character to sink(context, c); returns the number of characters. */
typedef void (*guest_format_sink)(void* context, char c);
int guest_vformat(guest_format_sink sink, void* context, const char* fmt, va_list args);

/* To COM1. */
int guest_printf(const char* fmt, ...) GUESTFW_PRINTF(1, 2);
int guest_vprintf(const char* fmt, va_list args);

/* Like C's snprintf: writes at most size - 1 characters and a NUL (when size > 0), and returns the
 * length the whole output would have. */
int guest_snprintf(char* buffer, size_t size, const char* fmt, ...) GUESTFW_PRINTF(3, 4);
int guest_vsnprintf(char* buffer, size_t size, const char* fmt, va_list args);
