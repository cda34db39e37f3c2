/* A minimal setjmp/longjmp: exception handlers and the test framework use it to abandon a piece of
 * code and resume at a saved point. */
#pragma once

#include <stdint.h>
#include <stdnoreturn.h>

struct guest_jump_buffer {
  uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};

/* Returns 0 when saving, and the value given to guest_longjmp when resumed through it. */
__attribute__((returns_twice)) int guest_setjmp(struct guest_jump_buffer* buffer);
/* Resumes at buffer's guest_setjmp, which then returns value (1 if value is 0). */
noreturn void guest_longjmp(struct guest_jump_buffer* buffer, int value);
