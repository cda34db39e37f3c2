/* Byte-wise on purpose: the guest runs in an instruction emulator where simple loops are as fast as
 * anything, and gcc must not turn these loops back into calls to themselves
 * (-fno-tree-loop-distribute-patterns). */
#include "guestfw/string.h"

#include <stdint.h>

void* memset(void* dest, int value, size_t size) {
  unsigned char* d = dest;
  for (size_t i = 0; i < size; ++i) d[i] = (unsigned char)value;
  return dest;
}

void* memcpy(void* restrict dest, const void* restrict src, size_t size) {
  unsigned char* d = dest;
  const unsigned char* s = src;
  for (size_t i = 0; i < size; ++i) d[i] = s[i];
  return dest;
}

void* memmove(void* dest, const void* src, size_t size) {
  unsigned char* d = dest;
  const unsigned char* s = src;
  if ((uintptr_t)d < (uintptr_t)s) {
    for (size_t i = 0; i < size; ++i) d[i] = s[i];
  } else {
    for (size_t i = size; i > 0; --i) d[i - 1] = s[i - 1];
  }
  return dest;
}

int memcmp(const void* a, const void* b, size_t size) {
  const unsigned char* x = a;
  const unsigned char* y = b;
  for (size_t i = 0; i < size; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char* s) {
  size_t length = 0;
  while (s[length] != '\0') ++length;
  return length;
}

int strcmp(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char* a, const char* b, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    if (a[i] != b[i] || a[i] == '\0') return (unsigned char)a[i] - (unsigned char)b[i];
  }
  return 0;
}

char* strstr(const char* haystack, const char* needle) {
  const size_t length = strlen(needle);
  for (; *haystack != '\0'; ++haystack) {
    if (strncmp(haystack, needle, length) == 0) return (char*)haystack;
  }
  return length == 0 ? (char*)haystack : NULL;
}
