/* drtest.elf, layouts and delivery paths found by the differential fuzzer (docs/fuzzing.md): each
 * case is one divergence between drvm's default engines and --exact, kept as a regression case. A
 * watch that shares its page with a structure the processor uses, the guest's TF across a store to
 * a watched page, DR7.GD across a single-step #DB. */
#include "drtest.h"

#define WATCHED (drtest_area + 0x700)

/* Fuzzer divergence 1 (SDM 17.3.1.4): a store to a page that also holds a write watch (not to the
 * watched bytes) is still followed by its single-step trap. */
DRTEST_CASE(single_step_trap_after_a_store_beside_a_watch) {
  drtest_config.stop_stepping_at = (uint64_t)drtest_step_store_done;
  drtest_arm(1, WATCHED + 0x40, DRTEST_WRITE, 8, DRTEST_LOCAL);
  drtest_step_into_store(WATCHED, 0x55);
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_step_store_insn, DR6_CLEAN | DR6_BS);
  DRTEST_ASSERT_HIT(1, drtest_step_store_done, DR6_CLEAN | DR6_BS);
  GUEST_ASSERT_EQ(*(volatile uint64_t*)WATCHED, 0x55);
}

/* Fuzzer divergence 4 (SDM 17.2.4): the processor clears GD when it enters the #DB handler, for a
 * single-step trap too, so the handler's own MOV DR does not fault. */
DRTEST_CASE(single_step_trap_clears_gd) {
  drtest_config.stop_stepping_at = (uint64_t)drtest_step_nop3;
  write_dr(7, DR7_FIXED_1 | (1ULL << 13)); /* GD */
  drtest_step_after_popf();
  drtest_disarm(); /* a MOV DR: GD must be clear by now */
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_step_nop2, DR6_CLEAN | DR6_BS);
  DRTEST_ASSERT_HIT(1, drtest_step_nop3, DR6_CLEAN | DR6_BS);
}

struct idt_pointer {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed));

static void raise_ud(void* unused) {
  (void)unused;
  drtest_raise_ud();
}

/* Fuzzer divergences 6 and 7: a read/write watch on a page that holds the IDT in use. Every
 * exception is still delivered through it (the processor reads the gate; no #DB for bytes it does
 * not touch), and the watch still fires for the program's own accesses. */
DRTEST_CASE(exceptions_delivered_with_a_watch_on_the_idt_page) {
  struct idt_pointer original, moved;
  __asm__ volatile("sidt %0" : "=m"(original));
  uint8_t* const copy = drtest_area + 0x800; /* the IDT moves next to WATCHED */
  memcpy(copy, (const void*)original.base, (uint64_t)original.limit + 1);
  moved.limit = original.limit;
  moved.base = (uint64_t)(uintptr_t)copy;
  __asm__ volatile("lidt %0" : : "m"(moved));
  drtest_arm(0, WATCHED, DRTEST_READ_WRITE, 8, DRTEST_LOCAL);
  struct guest_trap trap;
  const bool caught = guest_catch_exception(raise_ud, NULL, &trap);
  drtest_store64(WATCHED, 7);
  drtest_disarm();
  __asm__ volatile("lidt %0" : : "m"(original));
  GUEST_ASSERT_TRUE(caught);
  GUEST_ASSERT_EQ(trap.vector, X86_VECTOR_UD);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)drtest_ud_insn);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store64_done, DR6_CLEAN | DR6_B(0));
}

/* Fuzzer divergence 2 (SDM 17.3.1.1): RF, set by the IRET of the handler of an instruction
 * breakpoint on a PUSHFQ, only covers that instruction: the processor clears it when the PUSHFQ
 * completes, so a breakpoint on the next instruction fires, and the image PUSHFQ stored has RF
 * clear. */
DRTEST_CASE(rf_cleared_after_pushf) {
  drtest_arm(0, drtest_pushf_insn, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  drtest_arm(1, drtest_pushf_next, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  const uint64_t image = drtest_pushf_pop();
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_pushf_insn, DR6_CLEAN | DR6_B(0));
  DRTEST_ASSERT_HIT(1, drtest_pushf_next, DR6_CLEAN | DR6_B(1));
  GUEST_ASSERT_EQ(image & X86_RFLAGS_RF, 0);
}

extern uint64_t guestfw_pml4[512];

/* Fuzzer divergence 6: a read/write watch on an unused entry of the live PML4. The processor's own
 * page walks through that page do not touch the watched bytes (no #DB, and accesses elsewhere go
 * on); the program's own read of them traps. */
DRTEST_CASE(read_write_watch_on_the_live_pml4_page) {
  volatile uint64_t* const unused_entry = &guestfw_pml4[256];
  drtest_arm(0, (const volatile void*)unused_entry, DRTEST_READ_WRITE, 8, DRTEST_LOCAL);
  drtest_store64(WATCHED, 9);
  const uint64_t entry = drtest_load64(unused_entry);
  drtest_disarm();
  GUEST_ASSERT_EQ(entry, 0);
  GUEST_ASSERT_EQ(*(volatile uint64_t*)WATCHED, 9);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_load64_done, DR6_CLEAN | DR6_B(0));
}
