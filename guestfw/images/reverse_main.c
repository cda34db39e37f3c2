/* reverse.elf: the guest the reverse-execution tests debug with the real gdb (tests/e2e,
 * gdb_reverse_test.cpp). Ordinary globals side by side, as a compiler lays them out, and code built
 * at -O0 as a user's debug build is, so gdb's line stepping and `print` of locals are exact. In
 * order, guest_main:
 *   - count_up() writes counter = 3 * i + 1 for i = 0..9 (last value 28);
 *   - corrupt() writes counter = 999 once;
 *   - add_scaled(5, 7) calls scale(5) and scale(7) (a call chain for reverse-step/next/finish);
 *   - fill_buffer() writes all of buffer[64] with one `rep stosb` (label reverse_rep_stosb);
 *     after_buffer, the next global, is not touched;
 *   - raise_invalid_opcode() executes `ud2` (label reverse_ud2); on_invalid_opcode() counts it in
 *     handled and resumes past the ud2;
 *   - scribble() makes REVERSE_WRITES random writes into scratch[8] for the command line's
 *     seed=N (default 1): 1-, 2-, 4- and 8-byte stores, each changing every element it touches;
 *     current_step holds the write's number (0-based) while it happens;
 *   - done() is called last; the run exits with status 0.
 * Each phase prints one line, so a replay that printed twice would show. */
#include "guestfw/guestfw.h"

enum { REVERSE_WRITES = 32 };

int counter;
int scaled_total;
unsigned char buffer[64];
uint64_t after_buffer;
int handled;
uint32_t scratch[8];
/* No write yet. Initialized, so the guest's .bss clear never writes it: its first write is step
 * 0's. */
uint32_t current_step = 0xffffffff;

/* The stores scribble() makes through pointers into scratch (C's aliasing rules allow them). */
typedef uint16_t __attribute__((may_alias)) alias_u16;
typedef uint64_t __attribute__((may_alias)) alias_u64;

__attribute__((noinline)) void count_up(void) {
  for (int i = 0; i < 10; i++) {
    counter = 3 * i + 1;
  }
}

__attribute__((noinline)) void corrupt(void) {
  counter = 999;
}

__attribute__((noinline)) int scale(int x) {
  int scaled = x * 3;
  scaled = scaled + 1;
  return scaled;
}

__attribute__((noinline)) int add_scaled(int a, int b) {
  int sa = scale(a);
  int sb = scale(b);
  return sa + sb;
}

__attribute__((noinline)) void fill_buffer(unsigned char value) {
  unsigned char* destination = buffer;
  uint64_t count = sizeof buffer;
  __asm__ volatile(
      ".globl reverse_rep_stosb\n"
      "reverse_rep_stosb:\n\t"
      "rep stosb"
      : "+D"(destination), "+c"(count)
      : "a"(value)
      : "memory");
}

__attribute__((noinline)) bool on_invalid_opcode(struct guest_frame* frame) {
  handled = handled + 1;
  frame->rip += 2; /* past the ud2 */
  return true;
}

__attribute__((noinline)) void raise_invalid_opcode(void) {
  __asm__ volatile(
      ".globl reverse_ud2\n"
      "reverse_ud2:\n\t"
      "ud2" ::
          : "memory");
}

static uint64_t next_random(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Each store XORs in a value with bit 0 of every element it touches set, so each one changes
 * what gdb's `watch scratch[k]` sees: every write a trace logs is a write gdb stops at. */
__attribute__((noinline)) void scribble(uint64_t seed) {
  uint64_t state = seed;
  for (uint32_t step = 0; step < REVERSE_WRITES; step++) {
    current_step = step;
    const uint64_t r = next_random(&state);
    const unsigned index = (unsigned)(r % 8);
    const unsigned part = (unsigned)((r >> 8) % 4);
    const uint64_t flip = (r >> 16) | 0x0000000100000001ULL;
    switch ((r >> 12) % 4) {
      case 0: {
        unsigned char* byte = (unsigned char*)&scratch[index] + part;
        *byte = (unsigned char)(*byte ^ flip);
        break;
      }
      case 1: {
        alias_u16* half = (alias_u16*)&scratch[index] + part % 2;
        *half = (uint16_t)(*half ^ flip);
        break;
      }
      case 2:
        scratch[index] = scratch[index] ^ (uint32_t)flip;
        break;
      default: {
        alias_u64* pair = (alias_u64*)&scratch[index & ~1u];
        *pair = *pair ^ flip;
        break;
      }
    }
  }
}

__attribute__((noinline)) void done(void) {
  guest_printf("reverse: done\n");
}

int guest_main(void) {
  const uint64_t seed = guest_cmdline_number("seed", 1);
  guest_printf("reverse: start, seed %lu\n", (unsigned long)seed);
  count_up();
  guest_printf("reverse: counter %d\n", counter);
  corrupt();
  guest_printf("reverse: corrupted to %d\n", counter);
  scaled_total = add_scaled(5, 7);
  guest_printf("reverse: add_scaled(5, 7) = %d\n", scaled_total);
  fill_buffer(0xab);
  guest_printf("reverse: buffer[0] %#x buffer[63] %#x after_buffer %#lx\n", buffer[0], buffer[63],
               (unsigned long)after_buffer);
  guest_set_exception_handler(X86_VECTOR_UD, on_invalid_opcode);
  raise_invalid_opcode();
  guest_printf("reverse: handled %d\n", handled);
  scribble(seed);
  guest_printf("reverse: scratch");
  for (unsigned i = 0; i < 8; i++) guest_printf(" %08x", scratch[i]);
  guest_printf("\n");
  done();
  return 0;
}
