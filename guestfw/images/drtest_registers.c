/* drtest.elf, registers: what MOV to and from DR0-DR7 reads back and when it faults (SDM 17.2). */
#include "drtest.h"

/* Canonical addresses nothing in the image touches, for slots armed only to be read back. */
#define UNUSED_ADDRESS(n) (0xffff800000000000ULL + 0x1000ULL * (n))

DRTEST_CASE(dr0_to_dr3_read_back_exact_64bit_values) {
  static const uint64_t values[] = {0xffff800012345678ULL, 0x00007fffffffffffULL,
                                    0x0000456789abcdefULL, 1};
  uint64_t read[4][4];
  for (unsigned round = 0; round < 4; ++round) {
    for (unsigned slot = 0; slot < 4; ++slot) write_dr(slot, values[(slot + round) % 4]);
    for (unsigned slot = 0; slot < 4; ++slot) read[round][slot] = read_dr(slot);
  }
  for (unsigned round = 0; round < 4; ++round)
    for (unsigned slot = 0; slot < 4; ++slot)
      GUEST_ASSERT_EQ(read[round][slot], values[(slot + round) % 4]);
}

/* SDM 17.2.3: bits 4-11 and 16-31 read as 1 and bit 12 as 0, except that bit 16 (RTM) and bit 11
 * (bus-lock detection) are writable when the processor supports those features; 63:32 read 0. */
DRTEST_CASE(dr6_write_zero_reads_fixed_bits) {
  write_dr6(0);
  const uint64_t dr6 = read_dr6();
  uint64_t expected = DR6_CLEAN;
  if (drtest_cpu_has_rtm()) expected &= ~DR6_RTM;
  if (drtest_cpu_has_bus_lock_detect()) expected &= ~DR6_BLD;
  GUEST_ASSERT_EQ(dr6, expected);
}

DRTEST_CASE(dr6_status_bits_read_back) {
  const uint64_t status = DR6_B(0) | DR6_B(1) | DR6_B(2) | DR6_B(3) | DR6_BD | DR6_BS | DR6_BT;
  write_dr6(DR6_CLEAN | status);
  const uint64_t all = read_dr6();
  write_dr6(DR6_CLEAN | DR6_B(2) | DR6_BS);
  const uint64_t some = read_dr6();
  write_dr6(DR6_CLEAN);
  const uint64_t none = read_dr6();
  GUEST_ASSERT_EQ(all, DR6_CLEAN | status);
  GUEST_ASSERT_EQ(some, DR6_CLEAN | DR6_B(2) | DR6_BS);
  GUEST_ASSERT_EQ(none, DR6_CLEAN);
}

/* SDM 17.2.4: bit 10 of DR7 is reserved and reads as 1. */
DRTEST_CASE(dr7_write_zero_reads_bit10) {
  write_dr7(0);
  GUEST_ASSERT_EQ(read_dr7(), DR7_FIXED_1);
}

DRTEST_CASE(dr7_control_bits_read_back) {
  for (unsigned slot = 0; slot < 4; ++slot) write_dr(slot, UNUSED_ADDRESS(slot));
  const uint64_t control = drtest_dr7_bits(0, DRTEST_WRITE, 4, DRTEST_LOCAL) |
                           drtest_dr7_bits(1, DRTEST_READ_WRITE, 8, DRTEST_GLOBAL) |
                           drtest_dr7_bits(2, DRTEST_WRITE, 1, DRTEST_LOCAL) |
                           drtest_dr7_bits(3, DRTEST_READ_WRITE, 2, DRTEST_GLOBAL);
  write_dr7(control);
  const uint64_t dr7 = read_dr7();
  drtest_disarm();
  GUEST_ASSERT_EQ(control, 0x71bd0099);
  GUEST_ASSERT_EQ(dr7, control | DR7_FIXED_1);
}

/* SDM 17.2.2: with CR4.DE = 0, DR4 and DR5 are aliases of DR6 and DR7. */
DRTEST_CASE(dr4_aliases_dr6_when_cr4_de_clear) {
  GUEST_ASSERT_EQ(drtest_read_cr4() & X86_CR4_DE, 0);
  drtest_write_dr4(DR6_CLEAN | DR6_B(2));
  const uint64_t dr6_after_dr4_write = read_dr6();
  write_dr6(DR6_CLEAN | DR6_B(1) | DR6_BS);
  const uint64_t dr4 = drtest_read_dr4();
  write_dr6(DR6_CLEAN);
  GUEST_ASSERT_EQ(dr6_after_dr4_write, DR6_CLEAN | DR6_B(2));
  GUEST_ASSERT_EQ(dr4, DR6_CLEAN | DR6_B(1) | DR6_BS);
}

DRTEST_CASE(dr5_aliases_dr7_when_cr4_de_clear) {
  GUEST_ASSERT_EQ(drtest_read_cr4() & X86_CR4_DE, 0);
  /* Slots configured but not enabled: nothing can fire. */
  const uint64_t first = drtest_dr7_bits(1, DRTEST_WRITE, 4, DRTEST_DISABLED);
  const uint64_t second = drtest_dr7_bits(3, DRTEST_READ_WRITE, 8, DRTEST_DISABLED);
  drtest_write_dr5(first);
  const uint64_t dr7_after_dr5_write = read_dr7();
  write_dr7(second);
  const uint64_t dr5 = drtest_read_dr5();
  write_dr7(0);
  GUEST_ASSERT_EQ(dr7_after_dr5_write, first | DR7_FIXED_1);
  GUEST_ASSERT_EQ(dr5, second | DR7_FIXED_1);
}

struct dr_move {
  void (*run)(void);
  const char* instruction;
};

static void write_dr4_marker(void) {
  drtest_write_dr4(DR6_CLEAN | DR6_B(3));
}
static void read_dr4(void) {
  drtest_read_dr4();
}
static void write_dr5_marker(void) {
  drtest_write_dr5(drtest_dr7_bits(2, DRTEST_WRITE, 1, DRTEST_DISABLED));
}
static void read_dr5(void) {
  drtest_read_dr5();
}

static void run_dr_move(void* move) {
  ((const struct dr_move*)move)->run();
}

/* SDM 17.2.2: with CR4.DE = 1, any reference to DR4 or DR5 raises #UD. */
DRTEST_CASE(dr4_dr5_raise_ud_when_cr4_de_set) {
  const struct dr_move moves[] = {
      {write_dr4_marker, drtest_write_dr4_insn},
      {read_dr4, drtest_read_dr4_insn},
      {write_dr5_marker, drtest_write_dr5_insn},
      {read_dr5, drtest_read_dr5_insn},
  };
  struct guest_trap traps[4];
  bool raised[4];
  const uint64_t cr4 = drtest_read_cr4();
  drtest_write_cr4(cr4 | X86_CR4_DE);
  for (unsigned i = 0; i < 4; ++i)
    raised[i] = guest_catch_exception(run_dr_move, (void*)&moves[i], &traps[i]);
  drtest_write_cr4(cr4);
  const uint64_t dr6 = read_dr6(), dr7 = read_dr7();
  for (unsigned i = 0; i < 4; ++i) {
    GUEST_ASSERT_TRUE(raised[i]);
    GUEST_ASSERT_EQ(traps[i].vector, X86_VECTOR_UD);
    GUEST_ASSERT_EQ(traps[i].rip, (uint64_t)moves[i].instruction);
  }
  GUEST_ASSERT_EQ(dr6, DR6_CLEAN); /* the faulting writes changed nothing */
  GUEST_ASSERT_EQ(dr7, DR7_FIXED_1);
}

/* SDM 17.2.3/17.2.4 and MOV DR: in 64-bit mode, writing 1 to any of bits 63:32 of DR6 or DR7 raises
 * #GP(0) and leaves the register unchanged. */
DRTEST_CASE(dr6_upper_half_write_raises_gp) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_GP, drtest_write_dr6_arg, (void*)((1ULL << 32) | DR6_CLEAN),
                         &trap);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)drtest_write_dr6_insn);
  GUEST_ASSERT_EQ(trap.error_code, 0);
  GUEST_ASSERT_EQ(read_dr6(), DR6_CLEAN);
}

DRTEST_CASE(dr7_upper_half_write_raises_gp) {
  struct guest_trap trap;
  const uint64_t disabled_slot = drtest_dr7_bits(0, DRTEST_WRITE, 8, DRTEST_DISABLED);
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_GP, drtest_write_dr7_arg, (void*)((1ULL << 63) | disabled_slot),
                         &trap);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)drtest_write_dr7_insn);
  GUEST_ASSERT_EQ(trap.error_code, 0);
  GUEST_ASSERT_EQ(read_dr7(), DR7_FIXED_1);
}
