/* The few C library string functions guest code (and gcc itself, for struct copies and zeroing)
 * needs. */
#pragma once

#include <stddef.h>

void* memset(void* dest, int value, size_t size);
void* memcpy(void* restrict dest, const void* restrict src, size_t size);
void* memmove(void* dest, const void* src, size_t size);
int memcmp(const void* a, const void* b, size_t size);
size_t strlen(const char* s);
int strcmp(const char* a, const char* b);
int strncmp(const char* a, const char* b, size_t size);
char* strstr(const char* haystack, const char* needle);
