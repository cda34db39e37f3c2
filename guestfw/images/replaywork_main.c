/* replaywork.elf: the workload of the reverse-execution benchmark (bench/gdb/reverse_bench.cpp).
 * Ordinary globals, as a compiler lays them out. In order, guest_main:
 *   - writes replay_first once in replay_write_first() (the write `watch` +
 *     `reverse-continue` goes back to), then calls replay_started();
 *   - runs loops=N iterations (default 1000000) that each write replay_value; every tick=T
 *     iterations (default 0: never) it calls replay_tick(), which writes one byte in each of
 *     pages=K pages (default 1) of replay_buffer; every print=P iterations (default 0: never) it
 *     prints a line on COM1;
 *   - calls replay_done() and exits with status 0.
 * Breakpoints go on replay_started, replay_tick and replay_done (never inlined). */
#include <stdint.h>

#include "guestfw/guestfw.h"

enum { REPLAY_PAGE = 4096, REPLAY_MAX_PAGES = 256 };

/* Initialized (in .data): the firmware's REP STOS that clears .bss never writes it, so a watch on
 * it does not make a replay step that REP STOS per iteration (it clears replay_buffer too). */
uint64_t replay_first = 1;
/* volatile: every iteration stores it, as a debug build would. */
volatile uint64_t replay_value;
uint64_t replay_ticks;
unsigned char replay_buffer[REPLAY_MAX_PAGES * REPLAY_PAGE];

__attribute__((noinline)) void replay_write_first(void) {
  replay_first = 0x5eed;
}

__attribute__((noinline)) void replay_started(void) {
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void replay_tick(uint64_t pages) {
  replay_ticks = replay_ticks + 1;
  for (uint64_t page = 0; page < pages; page++) {
    replay_buffer[page * REPLAY_PAGE + replay_ticks % REPLAY_PAGE] = (unsigned char)replay_ticks;
  }
}

__attribute__((noinline)) void replay_done(void) {
  __asm__ volatile("" ::: "memory");
}

int guest_main(void) {
  const uint64_t loops = guest_cmdline_number("loops", 1000000);
  const uint64_t tick = guest_cmdline_number("tick", 0);
  uint64_t pages = guest_cmdline_number("pages", 1);
  const uint64_t print = guest_cmdline_number("print", 0);
  if (pages > REPLAY_MAX_PAGES) pages = REPLAY_MAX_PAGES;
  replay_write_first();
  replay_started();
  for (uint64_t i = 0; i < loops; i++) {
    replay_value = replay_value * 6364136223846793005ULL + i;
    if (tick != 0 && i % tick == tick - 1) replay_tick(pages);
    if (print != 0 && i % print == print - 1) {
      guest_printf("replaywork: %llu\n", (unsigned long long)(i + 1));
    }
  }
  replay_done();
  guest_printf("replaywork: done, %llu loops, %llu ticks, value %llx\n", (unsigned long long)loops,
               (unsigned long long)replay_ticks, (unsigned long long)replay_value);
  return GUESTFW_EXIT_SUCCESS;
}
