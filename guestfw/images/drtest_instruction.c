/* drtest.elf, instruction breakpoints: faults taken before the instruction runs, RF, exact counts,
 * and their order against data breakpoints (SDM 17.2.4, 17.3.1.1). */
#include "drtest.h"

#define WATCHED (drtest_area + 0x500)

/* SDM 17.3.1.1: a fault. RIP is the instruction, which has not run; RF is pushed as it was (0). */
DRTEST_CASE(instruction_breakpoint_faults_before_execution) {
  drtest_arm(0, drtest_increment_insn, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  const uint64_t result = drtest_increment(41);
  drtest_disarm();
  GUEST_ASSERT_EQ(result, 42);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_increment_insn, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].rax, 41);
  GUEST_ASSERT_EQ(drtest_record.log[0].rflags & X86_RFLAGS_RF, 0);
}

/* Without RF the restarted instruction faults again; the fourth return sets RF and the instruction
 * runs exactly once. */
DRTEST_CASE(instruction_breakpoint_refaults_until_rf_is_set) {
  drtest_config.rf_from_hit = 4;
  drtest_arm(1, drtest_increment_insn, DRTEST_EXECUTE, 1, DRTEST_GLOBAL);
  const uint64_t result = drtest_increment(7);
  drtest_disarm();
  GUEST_ASSERT_EQ(result, 8);
  DRTEST_ASSERT_HITS(4);
  for (unsigned i = 0; i < 4; ++i) {
    DRTEST_ASSERT_HIT(i, drtest_increment_insn, DR6_CLEAN | DR6_B(1));
    GUEST_ASSERT_EQ(drtest_record.log[i].rax, 7);
  }
}

/* RF covers one instruction only: the breakpoint fires again on every iteration. */
DRTEST_CASE(instruction_breakpoint_counts_50_iterations_exactly) {
  drtest_arm(2, drtest_counting_loop_insn, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  const uint32_t executed = drtest_counting_loop(50);
  drtest_disarm();
  GUEST_ASSERT_EQ(executed, 50);
  DRTEST_ASSERT_HITS(50);
  for (unsigned i = 0; i < DRTEST_LOG_SIZE; ++i) {
    DRTEST_ASSERT_HIT(i, drtest_counting_loop_insn, DR6_CLEAN | DR6_B(2));
    GUEST_ASSERT_EQ(drtest_record.log[i].rax, i);
  }
}

/* Each slot in turn; the slot is cleared afterwards, because a disabled slot whose address matches
 * may still set its Bn bit (SDM 17.2.3). */
DRTEST_CASE(instruction_breakpoint_in_each_slot) {
  for (unsigned slot = 0; slot < 4; ++slot) {
    drtest_arm(slot, drtest_increment_insn, DRTEST_EXECUTE, 1,
               slot % 2 == 0 ? DRTEST_LOCAL : DRTEST_GLOBAL);
    GUEST_ASSERT_EQ(drtest_increment(slot), slot + 1);
    drtest_disarm();
    write_dr(slot, 0);
  }
  DRTEST_ASSERT_HITS(4);
  for (unsigned slot = 0; slot < 4; ++slot)
    DRTEST_ASSERT_HIT(slot, drtest_increment_insn, DR6_CLEAN | DR6_B(slot));
}

DRTEST_CASE(instruction_breakpoint_in_two_slots_reports_both) {
  drtest_arm(0, drtest_increment_insn, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  drtest_arm(3, drtest_increment_insn, DRTEST_EXECUTE, 1, DRTEST_GLOBAL);
  const uint64_t result = drtest_increment(1);
  drtest_disarm();
  GUEST_ASSERT_EQ(result, 2);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_increment_insn, DR6_CLEAN | DR6_B(0) | DR6_B(3));
}

/* An instruction breakpoint matches the address of an instruction's first byte only: one on a byte
 * inside a 5-byte MOV never fires, and the MOV is intact. */
DRTEST_CASE(instruction_breakpoint_inside_an_instruction_never_fires) {
  drtest_arm(0, drtest_mov_imm_insn + 1, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  const uint32_t unwatched = drtest_mov_imm();
  const unsigned hits_inside = drtest_record.hits;
  drtest_arm(1, drtest_mov_imm_insn, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  const uint32_t watched = drtest_mov_imm();
  drtest_disarm();
  GUEST_ASSERT_EQ(unwatched, 0x12345678);
  GUEST_ASSERT_EQ(watched, 0x12345678);
  GUEST_ASSERT_EQ(hits_inside, 0);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_mov_imm_insn, DR6_CLEAN | DR6_B(1));
}

/* The same instruction under an instruction breakpoint and a data breakpoint: the fault comes first
 * (the store has not happened), then, once RF lets the store run, the trap. */
DRTEST_CASE(instruction_fault_precedes_data_trap_of_same_instruction) {
  *(volatile uint64_t*)WATCHED = 1;
  drtest_config.snapshot_address = WATCHED;
  drtest_config.snapshot_size = 8;
  drtest_arm(0, drtest_store64, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  drtest_arm(1, WATCHED, DRTEST_WRITE, 8, DRTEST_LOCAL);
  drtest_store64(WATCHED, 2);
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_store64, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 1);
  DRTEST_ASSERT_HIT(1, drtest_store64_done, DR6_CLEAN | DR6_B(1));
  GUEST_ASSERT_EQ(drtest_record.log[1].snapshot[0], 2);
}

/* A data trap whose saved RIP holds an instruction breakpoint: returning from the trap without RF,
 * the next instruction faults. The trap's DR6 may already name the instruction breakpoint (SDM
 * 17.2.3 lets Bn be set for a met condition that raised nothing; QEMU TCG does), so B2 is not
 * checked there. */
DRTEST_CASE(data_trap_then_instruction_fault_on_next_instruction) {
  drtest_arm(0, WATCHED + 8, DRTEST_WRITE, 8, DRTEST_GLOBAL);
  drtest_arm(2, drtest_store64_done, DRTEST_EXECUTE, 1, DRTEST_GLOBAL);
  drtest_store64(WATCHED + 8, 3);
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  GUEST_ASSERT_EQ(drtest_record.log[0].rip, (uint64_t)drtest_store64_done);
  GUEST_ASSERT_EQ(drtest_record.log[0].dr6 & ~DR6_B(2), DR6_CLEAN | DR6_B(0));
  DRTEST_ASSERT_HIT(1, drtest_store64_done, DR6_CLEAN | DR6_B(2));
}
