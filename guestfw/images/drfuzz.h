/* drfuzz.elf: the differential fuzzer of drvm's debug-register engines (docs/fuzzing.md). Each seed
 * is one random program: DR0-DR7 armed on fuzz variables that share pages with the image's own page
 * tables, GDT, IDT, TSS, stack and #DB handler bookkeeping (the "arena") or sit on plain data and
 * code pages, then random accesses, string instructions, stack operations, exceptions, IRETQ with
 * RF/TF and POPF with TF. Every exception is logged and printed; the output depends only on the
 * seed, so any two VMMs (or drvm engines) must print the same lines. */
#pragma once

#include <stdint.h>

/* drfuzz_ops.S: the steps. */
void drfuzz_store1(volatile void* address, uint64_t value);
void drfuzz_store2(volatile void* address, uint64_t value);
void drfuzz_store4(volatile void* address, uint64_t value);
void drfuzz_store8(volatile void* address, uint64_t value);
uint64_t drfuzz_load1(const volatile void* address);
uint64_t drfuzz_load2(const volatile void* address);
uint64_t drfuzz_load4(const volatile void* address);
uint64_t drfuzz_load8(const volatile void* address);
void drfuzz_add4(volatile void* address, uint64_t value);
void drfuzz_rep_movsb(volatile void* destination, const volatile void* source, uint64_t count,
                      uint64_t direction);
void drfuzz_rep_stosb(volatile void* destination, uint64_t value, uint64_t count,
                      uint64_t direction);
void drfuzz_rep_stosq(volatile void* destination, uint64_t value, uint64_t count,
                      uint64_t direction);
void drfuzz_push_pop(uint64_t stack, uint64_t value);
void drfuzz_call_ret(uint64_t stack);
void drfuzz_push_pop_memory(uint64_t stack, uint64_t unused, volatile void* address);
void drfuzz_ud2(void);
void drfuzz_divide_by_zero(void);
void drfuzz_int3(void);
void drfuzz_int_n(void);
void drfuzz_int_n_high(void);
void drfuzz_int_n_handler(void);
uint64_t drfuzz_iret_call(uint64_t target, uint64_t rflags_bits, volatile void* address);
void drfuzz_single_step(volatile void* address, uint64_t value);
void drfuzz_on_stack(void (*function)(void*), void* argument, uint64_t stack_top);
void drfuzz_load_tables(const void* gdtr, const void* idtr, uint32_t tss_selector);
void drfuzz_set_cr3(uint64_t value);

/* The code instruction breakpoints watch: eight functions (RDI = a fuzz variable, RSI = a value)
 * on a page of their own, and the address of every instruction they hold. */
typedef uint64_t (*drfuzz_code_function)(volatile void* address, uint64_t value);
extern const drfuzz_code_function drfuzz_code_functions[8];
extern const uint64_t drfuzz_code_insns[], drfuzz_code_insns_end[];
extern const char drfuzz_code_start[], drfuzz_code_end[];

/* INT n targets with a gate in the image's IDT (drfuzz_ops.S defines the same numbers): a vector
 * the exceptions leave unused, and one above them (intn=high: drvm completes INT n itself on hosts
 * whose KVM emulates the guest, and injecting a vector above 31 as an exception fails). */
#define DRFUZZ_INT_VECTOR 0x1f
#define DRFUZZ_INT_VECTOR_HIGH 0x21
/* Where drfuzz_int_n_handler counts. */
extern volatile uint64_t* drfuzz_int_counter;
