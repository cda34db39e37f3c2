/* drtest.elf, single step, INT3 and general detect (SDM 17.2.4, 17.3.1.3, 17.3.1.4, 17.3.2). */
#include "drtest.h"

#define WATCHED (drtest_area + 0x600)

/* SDM 17.3.1.4: TF set by POPF takes effect after the next instruction; each stepped instruction
 * then traps with BS, RIP at the instruction after it. */
DRTEST_CASE(single_step_traps_after_each_instruction) {
  drtest_config.stop_stepping_at = (uint64_t)drtest_step_nop3;
  drtest_step_after_popf();
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_step_nop2, DR6_CLEAN | DR6_BS);
  DRTEST_ASSERT_HIT(1, drtest_step_nop3, DR6_CLEAN | DR6_BS);
  GUEST_ASSERT_TRUE((drtest_record.log[0].rflags & X86_RFLAGS_TF) != 0);
}

static struct guest_frame breakpoint_frame;
static unsigned breakpoint_hits;
static uint64_t dr6_at_breakpoint;

static bool record_breakpoint(struct guest_frame* frame) {
  dr6_at_breakpoint = read_dr6();
  breakpoint_frame = *frame;
  ++breakpoint_hits;
  return true;
}

static bool record_breakpoint_and_set_tf(struct guest_frame* frame) {
  record_breakpoint(frame);
  frame->rflags |= X86_RFLAGS_TF;
  return true;
}

/* TF loaded by IRET: the first instruction after the return runs, then traps. */
DRTEST_CASE(single_step_enabled_by_iret) {
  breakpoint_hits = 0;
  guest_set_exception_handler(X86_VECTOR_BP, record_breakpoint_and_set_tf);
  drtest_config.stop_stepping_at = (uint64_t)drtest_after_int3_end;
  drtest_int3_then_nops();
  drtest_disarm();
  GUEST_ASSERT_EQ(breakpoint_hits, 1);
  GUEST_ASSERT_EQ(breakpoint_frame.rip, (uint64_t)drtest_after_int3);
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_after_int3_nop2, DR6_CLEAN | DR6_BS);
  DRTEST_ASSERT_HIT(1, drtest_after_int3_end, DR6_CLEAN | DR6_BS);
}

/* SDM 17.3.1.2/17.3.1.4: a single-step trap and a data breakpoint met by the same instruction are
 * reported by one #DB with BS and Bn both set. */
DRTEST_CASE(single_step_and_data_breakpoint_reported_together) {
  DRTEST_SKIP_UNDER_QEMU_TCG("reporting a single step and a data breakpoint in one #DB");
  drtest_config.stop_stepping_at = (uint64_t)drtest_step_store_done;
  drtest_arm(1, WATCHED, DRTEST_WRITE, 8, DRTEST_LOCAL);
  drtest_step_into_store(WATCHED, 0x55);
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_step_store_insn, DR6_CLEAN | DR6_BS);
  DRTEST_ASSERT_HIT(1, drtest_step_store_done, DR6_CLEAN | DR6_BS | DR6_B(1));
}

/* SDM 17.3.2: INT3 raises #BP (a trap: RIP after the INT3) and is not a debug exception: DR6 is
 * untouched, even with breakpoints armed elsewhere. */
DRTEST_CASE(int3_raises_bp_and_leaves_dr6_alone) {
  breakpoint_hits = 0;
  guest_set_exception_handler(X86_VECTOR_BP, record_breakpoint);
  drtest_arm(0, drtest_increment_insn, DRTEST_EXECUTE, 1, DRTEST_LOCAL);
  drtest_arm(1, WATCHED, DRTEST_READ_WRITE, 8, DRTEST_LOCAL);
  drtest_int3_then_nops();
  drtest_disarm();
  GUEST_ASSERT_EQ(breakpoint_hits, 1);
  GUEST_ASSERT_EQ(breakpoint_frame.vector, X86_VECTOR_BP);
  GUEST_ASSERT_EQ(breakpoint_frame.rip, (uint64_t)drtest_after_int3);
  GUEST_ASSERT_EQ(dr6_at_breakpoint, DR6_CLEAN);
  DRTEST_ASSERT_HITS(0);
}

/* General detect: a handler of its own, since the recording one reads DR7 (which would fault again
 * if GD were left set). A #DB while one is being handled means GD was not cleared: that nested one
 * skips its MOV DR (3 bytes, 4 with a REX prefix) so the case can end and report it. */
static struct {
  unsigned hits, nested;
  uint64_t rip, rax, dr6, dr7, dr0;
  bool handling;
} general_detect;

static bool record_general_detect(struct guest_frame* frame) {
  if (general_detect.handling) {
    ++general_detect.nested;
    const uint8_t* const instruction = (const uint8_t*)frame->rip;
    frame->rip += (instruction[0] & 0xf0) == 0x40 ? 4 : 3;
    return true;
  }
  general_detect.handling = true;
  ++general_detect.hits;
  general_detect.rip = frame->rip;
  general_detect.rax = frame->rax;
  general_detect.dr6 = read_dr6();
  general_detect.dr7 = read_dr7();
  general_detect.dr0 = read_dr0();
  write_dr6(DR6_CLEAN);
  general_detect.handling = false;
  return true;
}

static void start_general_detect(void) {
  general_detect.hits = general_detect.nested = 0;
  guest_set_exception_handler(X86_VECTOR_DB, record_general_detect);
}

/* SDM 17.2.4: with DR7.GD set, the next MOV to a debug register faults (#DB, RIP at the MOV, BD
 * set, the MOV not executed) and the processor clears GD so the handler can use the registers. */
DRTEST_CASE(general_detect_faults_on_mov_to_dr) {
  DRTEST_SKIP_UNDER_QEMU_TCG("general detect");
  start_general_detect();
  write_dr0(0x1111);
  drtest_gd_write_dr0(0x2222);
  const uint64_t dr0_after = read_dr0(), dr7_after = read_dr7();
  drtest_disarm();
  GUEST_ASSERT_EQ(general_detect.nested, 0);
  GUEST_ASSERT_EQ(general_detect.hits, 1);
  GUEST_ASSERT_EQ(general_detect.rip, (uint64_t)drtest_gd_mov_to_dr0);
  GUEST_ASSERT_EQ(general_detect.dr6, DR6_CLEAN | DR6_BD);
  GUEST_ASSERT_EQ(general_detect.dr7, DR7_FIXED_1); /* GD cleared on delivery */
  GUEST_ASSERT_EQ(general_detect.dr0, 0x1111);      /* the MOV had not run */
  GUEST_ASSERT_EQ(dr0_after, 0x2222);               /* and ran once resumed */
  GUEST_ASSERT_EQ(dr7_after, DR7_FIXED_1);
}

DRTEST_CASE(general_detect_faults_on_mov_from_dr) {
  DRTEST_SKIP_UNDER_QEMU_TCG("general detect");
  start_general_detect();
  write_dr0(0x3333);
  const uint64_t value = drtest_gd_read_dr0(0x5e5e);
  drtest_disarm();
  GUEST_ASSERT_EQ(general_detect.nested, 0);
  GUEST_ASSERT_EQ(general_detect.hits, 1);
  GUEST_ASSERT_EQ(general_detect.rip, (uint64_t)drtest_gd_mov_from_dr0);
  GUEST_ASSERT_EQ(general_detect.dr6, DR6_CLEAN | DR6_BD);
  GUEST_ASSERT_EQ(general_detect.dr7, DR7_FIXED_1);
  GUEST_ASSERT_EQ(general_detect.rax, 0x5e5e); /* RAX not yet loaded */
  GUEST_ASSERT_EQ(value, 0x3333);
}
