/* Exceptions 0-31: the IDT, the saved register frame, per-vector handlers, catching an exception
 * raised by a piece of code, and the register dump for exceptions nobody expected. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum {
  X86_VECTOR_DE = 0, /* divide error */
  X86_VECTOR_DB = 1, /* debug */
  X86_VECTOR_NMI = 2,
  X86_VECTOR_BP = 3, /* breakpoint (int3) */
  X86_VECTOR_OF = 4,
  X86_VECTOR_BR = 5,
  X86_VECTOR_UD = 6, /* invalid opcode */
  X86_VECTOR_NM = 7,
  X86_VECTOR_DF = 8, /* double fault */
  X86_VECTOR_TS = 10,
  X86_VECTOR_NP = 11,
  X86_VECTOR_SS = 12,
  X86_VECTOR_GP = 13, /* general protection */
  X86_VECTOR_PF = 14, /* page fault */
  X86_VECTOR_MF = 16,
  X86_VECTOR_AC = 17,
  X86_VECTOR_MC = 18,
  X86_VECTOR_XM = 19,
  GUESTFW_EXCEPTION_VECTORS = 32,
};

/* The interrupted context as the exception stubs save it. Handlers may change any field (RIP,
 * RFLAGS, RSP, general registers): the stub restores them all and returns with IRETQ. */
struct guest_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector;
  uint64_t error_code; /* 0 for vectors without one */
  uint64_t rip, cs, rflags, rsp, ss;
};

/* Returns true when it handled the exception (execution resumes from the possibly modified frame),
 * false to pass it on (to an active guest_catch_exception, then to the unexpected-exception path).
 */
typedef bool (*guest_exception_handler)(struct guest_frame* frame);

/* Installs handler for vector (NULL removes it); returns the previous one. */
guest_exception_handler guest_set_exception_handler(unsigned vector,
                                                    guest_exception_handler handler);

/* What guest_catch_exception saw. */
struct guest_trap {
  uint64_t vector;
  uint64_t error_code;
  uint64_t rip; /* as saved by the CPU: the faulting instruction for faults, the next for traps */
  uint64_t cr2; /* CR2 at delivery (the address for #PF) */
};

/* Runs fn(arg). If it raises an exception that no installed handler takes, execution abandons fn
 * and this returns true with *trap filled in; returns false when fn returns normally. Nests. */
bool guest_catch_exception(void (*fn)(void* arg), void* arg, struct guest_trap* trap);

/* "#GP general protection" and so on; "reserved" for unassigned vectors. */
const char* guest_exception_name(unsigned vector);

/* Prints the vector, error code, the saved registers, CR0/CR2/CR3/CR4 and DR6/DR7 to COM1. */
void guest_dump_frame(const struct guest_frame* frame);
