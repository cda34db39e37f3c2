/* gdbwork.elf: the guest the gdb end-to-end tests and benchmarks debug. Known variables at fixed
 * symbols, small noinline functions to break on, and loops that write, read and modify them so
 * every breakpoint and watchpoint kind fires a known number of times:
 *   - gdbwork_writes() writes watch_0..watch_5 (round * 10 + i) once per round (2 rounds);
 *   - gdbwork_reads() reads read_me once per round;
 *   - gdbwork_access() reads and writes access_me once per round;
 *   - the exit value is exit_code (3 unless gdb changes it).
 * With the command line "spin" it first spins until spin_release becomes non-zero (for Ctrl-C);
 * with "steps=N" it calls gdbwork_marker() N times (breakpoint round-trip benchmark). */
#include "guestfw/guestfw.h"

volatile uint64_t watch_0, watch_1, watch_2, watch_3, watch_4, watch_5;
volatile uint64_t read_me = 0x1234;
volatile uint64_t access_me = 100;
volatile uint64_t sink;
volatile uint32_t exit_code = 3;
volatile uint32_t spin_release;
/* 1 MiB gdb reads in the memory benchmark (in .bss: zero, mapped by the identity page tables). */
volatile uint8_t big_buffer[1 << 20];

__attribute__((noinline)) void gdbwork_marker(int round) {
  sink = sink + (uint64_t)round;
}

__attribute__((noinline)) void gdbwork_writes(int round) {
  const uint64_t base = (uint64_t)round * 10;
  watch_0 = base + 0;
  watch_1 = base + 1;
  watch_2 = base + 2;
  watch_3 = base + 3;
  watch_4 = base + 4;
  watch_5 = base + 5;
}

__attribute__((noinline)) void gdbwork_reads(void) {
  sink = read_me;
}

__attribute__((noinline)) void gdbwork_access(void) {
  access_me = access_me + 1;
}

__attribute__((noinline)) void gdbwork_spin(void) {
  while (spin_release == 0) cpu_pause();
}

static unsigned parse_steps(const char* cmdline) {
  static const char kPrefix[] = "steps=";
  for (unsigned i = 0; i < sizeof kPrefix - 1; ++i) {
    if (cmdline[i] != kPrefix[i]) return 0;
  }
  unsigned steps = 0;
  for (const char* p = cmdline + sizeof kPrefix - 1; *p >= '0' && *p <= '9'; ++p) {
    steps = steps * 10 + (unsigned)(*p - '0');
  }
  return steps;
}

int guest_main(void) {
  const char* cmdline = guest_cmdline();
  if (cmdline[0] == 's' && cmdline[1] == 'p' && cmdline[2] == 'i' && cmdline[3] == 'n') {
    guest_printf("gdbwork: spinning until spin_release is set\n");
    gdbwork_spin();
  }
  const unsigned steps = parse_steps(cmdline);
  for (unsigned i = 0; i < steps; ++i) gdbwork_marker((int)i);
  for (int round = 1; round <= 2; ++round) {
    gdbwork_marker(round);
    gdbwork_writes(round);
    gdbwork_reads();
    gdbwork_access();
  }
  sink = big_buffer[sizeof big_buffer - 1]; /* keeps big_buffer from --gc-sections */
  guest_printf("gdbwork: done, exit code %u\n", (unsigned)exit_code);
  return (int)exit_code;
}
