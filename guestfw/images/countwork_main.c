/* countwork.elf: runs workloads with exactly known access counts for the counting session's tests
 * (tests/session) and benchmark (bench/session). The command line picks them:
 *   (empty)   the exact set: cw_write_loop(200), cw_read_loop(150), cw_word_loop(100),
 *             cw_rep_stos_loop(20), cw_call_loop(120), in that order
 *   mux=N     cw_mux_loop(N): each cw_muxK written N times
 *   write=N   cw_write_loop(N)
 * then exits with 0. The counts are also printed so a failing test shows what ran. */
#include <stdint.h>

#include "guestfw/guestfw.h"

void cw_write_loop(uint64_t n);
void cw_read_loop(uint64_t n);
void cw_word_loop(uint64_t n);
void cw_rep_stos_loop(uint64_t n);
void cw_call_loop(uint64_t n);
void cw_mux_loop(uint64_t n);

int guest_main(void) {
  const uint64_t mux = guest_cmdline_number("mux", 0);
  const uint64_t write = guest_cmdline_number("write", 0);
  if (mux != 0) {
    cw_mux_loop(mux);
    guest_printf("countwork: mux %llu\n", (unsigned long long)mux);
  } else if (write != 0) {
    cw_write_loop(write);
    guest_printf("countwork: write %llu\n", (unsigned long long)write);
  } else {
    cw_write_loop(200);
    cw_read_loop(150);
    cw_word_loop(100);
    cw_rep_stos_loop(20);
    cw_call_loop(120);
    guest_printf("countwork: write 200 read 150 word 100 rep 20 call 120\n");
  }
  return GUESTFW_EXIT_SUCCESS;
}
