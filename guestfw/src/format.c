/* The formatting engine behind guest_printf and guest_snprintf. */
#include "guestfw/format.h"

#include <stdbool.h>
#include <stdint.h>

#include "guestfw/serial.h"
#include "guestfw/string.h"

struct conversion {
  bool left_align;
  bool zero_pad;
  bool alternate;
  int width;
  int precision; /* -1: none */
};

struct output {
  guest_format_sink sink;
  void* context;
  int count;
};

static void emit(struct output* out, char c) {
  out->sink(out->context, c);
  ++out->count;
}

static void emit_repeated(struct output* out, char c, int times) {
  for (int i = 0; i < times; ++i) emit(out, c);
}

/* prefix ("-", "0x", ...), then zeros, then body, padded to the width. */
static void emit_field(struct output* out, const struct conversion* conv, const char* prefix,
                       int zeros, const char* body, int body_length) {
  const int prefix_length = (int)strlen(prefix);
  int padding = conv->width - prefix_length - zeros - body_length;
  if (padding < 0) padding = 0;
  if (conv->zero_pad && !conv->left_align && conv->precision < 0) {
    zeros += padding;
    padding = 0;
  }
  if (!conv->left_align) emit_repeated(out, ' ', padding);
  for (int i = 0; i < prefix_length; ++i) emit(out, prefix[i]);
  emit_repeated(out, '0', zeros);
  for (int i = 0; i < body_length; ++i) emit(out, body[i]);
  if (conv->left_align) emit_repeated(out, ' ', padding);
}

static void emit_integer(struct output* out, const struct conversion* conv, uint64_t magnitude,
                         bool negative, unsigned base, bool uppercase, const char* prefix) {
  const char* digits = uppercase ? "0123456789ABCDEF" : "0123456789abcdef";
  char reversed[24];
  int length = 0;
  do {
    reversed[length++] = digits[magnitude % base];
    magnitude /= base;
  } while (magnitude != 0);
  if (conv->precision == 0 && length == 1 && reversed[0] == '0') length = 0; /* "%.0d" of 0 */
  char body[24];
  for (int i = 0; i < length; ++i) body[i] = reversed[length - 1 - i];
  const int zeros = conv->precision > length ? conv->precision - length : 0;
  emit_field(out, conv, negative ? "-" : prefix, zeros, body, length);
}

enum length_modifier { LENGTH_INT, LENGTH_CHAR, LENGTH_SHORT, LENGTH_LONG, LENGTH_LONG_LONG };

static uint64_t unsigned_argument(va_list* args, enum length_modifier length) {
  switch (length) {
    case LENGTH_CHAR:
      return (unsigned char)va_arg(*args, unsigned int);
    case LENGTH_SHORT:
      return (unsigned short)va_arg(*args, unsigned int);
    case LENGTH_LONG:
      return va_arg(*args, unsigned long);
    case LENGTH_LONG_LONG:
      return va_arg(*args, unsigned long long);
    case LENGTH_INT:
      break;
  }
  return va_arg(*args, unsigned int);
}

static int64_t signed_argument(va_list* args, enum length_modifier length) {
  switch (length) {
    case LENGTH_CHAR:
      return (signed char)va_arg(*args, int);
    case LENGTH_SHORT:
      return (short)va_arg(*args, int);
    case LENGTH_LONG:
      return va_arg(*args, long);
    case LENGTH_LONG_LONG:
      return va_arg(*args, long long);
    case LENGTH_INT:
      break;
  }
  return va_arg(*args, int);
}

static int parse_number(const char** fmt, va_list* args) {
  if (**fmt == '*') {
    ++*fmt;
    return va_arg(*args, int);
  }
  int value = 0;
  while (**fmt >= '0' && **fmt <= '9') value = value * 10 + (*(*fmt)++ - '0');
  return value;
}

int guest_vformat(guest_format_sink sink, void* context, const char* fmt, va_list args_in) {
  struct output out = {sink, context, 0};
  va_list args;
  va_copy(args, args_in);
  while (*fmt != '\0') {
    if (*fmt != '%') {
      emit(&out, *fmt++);
      continue;
    }
    const char* conversion_start = fmt++;
    struct conversion conv = {false, false, false, 0, -1};
    for (;; ++fmt) {
      if (*fmt == '-')
        conv.left_align = true;
      else if (*fmt == '0')
        conv.zero_pad = true;
      else if (*fmt == '#')
        conv.alternate = true;
      else
        break;
    }
    conv.width = parse_number(&fmt, &args);
    if (conv.width < 0) {
      conv.left_align = true;
      conv.width = -conv.width;
    }
    if (*fmt == '.') {
      ++fmt;
      conv.precision = parse_number(&fmt, &args);
      if (conv.precision < 0) conv.precision = -1;
    }
    enum length_modifier length = LENGTH_INT;
    if (fmt[0] == 'h' && fmt[1] == 'h')
      length = LENGTH_CHAR, fmt += 2;
    else if (fmt[0] == 'h')
      length = LENGTH_SHORT, fmt += 1;
    else if (fmt[0] == 'l' && fmt[1] == 'l')
      length = LENGTH_LONG_LONG, fmt += 2;
    else if (fmt[0] == 'l' || fmt[0] == 'z' || fmt[0] == 'j')
      length = LENGTH_LONG, fmt += 1;

    switch (*fmt) {
      case 'd':
      case 'i': {
        const int64_t value = signed_argument(&args, length);
        const uint64_t magnitude = value < 0 ? -(uint64_t)value : (uint64_t)value;
        emit_integer(&out, &conv, magnitude, value < 0, 10, false, "");
        break;
      }
      case 'u':
        emit_integer(&out, &conv, unsigned_argument(&args, length), false, 10, false, "");
        break;
      case 'x':
      case 'X': {
        const uint64_t value = unsigned_argument(&args, length);
        const char* prefix = conv.alternate && value != 0 ? (*fmt == 'x' ? "0x" : "0X") : "";
        emit_integer(&out, &conv, value, false, 16, *fmt == 'X', prefix);
        break;
      }
      case 'p': {
        const struct conversion pointer = {conv.left_align, false, false, conv.width, 16};
        emit_integer(&out, &pointer, (uint64_t)(uintptr_t)va_arg(args, void*), false, 16, false,
                     "0x");
        break;
      }
      case 'c': {
        const char c = (char)va_arg(args, int);
        emit_field(&out, &(struct conversion){conv.left_align, false, false, conv.width, -1}, "", 0,
                   &c, 1);
        break;
      }
      case 's': {
        const char* s = va_arg(args, const char*);
        if (s == NULL) s = "(null)";
        int s_length = 0;
        while (s[s_length] != '\0' && (conv.precision < 0 || s_length < conv.precision)) ++s_length;
        emit_field(&out, &(struct conversion){conv.left_align, false, false, conv.width, -1}, "", 0,
                   s, s_length);
        break;
      }
      case '%':
        emit(&out, '%');
        break;
      default: /* unknown or truncated conversion: print it as written */
        for (const char* c = conversion_start; c <= fmt && *c != '\0'; ++c) emit(&out, *c);
        if (*fmt == '\0') continue;
        break;
    }
    ++fmt;
  }
  va_end(args);
  return out.count;
}

static void serial_sink(void* context, char c) {
  (void)context;
  serial_putc(c);
}

int guest_vprintf(const char* fmt, va_list args) {
  return guest_vformat(serial_sink, NULL, fmt, args);
}

int guest_printf(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const int count = guest_vprintf(fmt, args);
  va_end(args);
  return count;
}

struct buffer_sink {
  char* buffer;
  size_t size;
  size_t used;
};

static void buffer_sink(void* context, char c) {
  struct buffer_sink* b = context;
  if (b->used + 1 < b->size) b->buffer[b->used++] = c;
}

int guest_vsnprintf(char* buffer, size_t size, const char* fmt, va_list args) {
  struct buffer_sink b = {buffer, size, 0};
  const int count = guest_vformat(buffer_sink, &b, fmt, args);
  if (size > 0) buffer[b.used] = '\0';
  return count;
}

int guest_snprintf(char* buffer, size_t size, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const int count = guest_vsnprintf(buffer, size, fmt, args);
  va_end(args);
  return count;
}
