/* drtest.elf, breakpoints in other contexts: inside exception handlers, on stack writes by PUSH and
 * CALL, and on repeated string instructions (SDM 17.3.1.1, 17.3.1.2). */
#include "drtest.h"

#define WATCHED (drtest_area + 0x700)
/* REP string buffers: the destination on the first page, the source on the second. */
#define DESTINATION (drtest_area + 0x800)
#define SOURCE (drtest_area + DRTEST_PAGE + 0x800)
#define STRING_BYTES 16

static unsigned invalid_opcode_hits;
static uint64_t invalid_opcode_rip;
static uint64_t handler_result;

static bool store_then_skip_ud2(struct guest_frame* frame) {
  ++invalid_opcode_hits;
  invalid_opcode_rip = frame->rip;
  drtest_store32(WATCHED, 0xfeed);
  frame->rip += 2;
  return true;
}

/* A #DB raised by a data breakpoint in a #UD handler is delivered there, as anywhere else. */
DRTEST_CASE(write_watch_hit_inside_exception_handler) {
  invalid_opcode_hits = 0;
  guest_set_exception_handler(X86_VECTOR_UD, store_then_skip_ud2);
  drtest_config.snapshot_address = WATCHED;
  drtest_config.snapshot_size = 4;
  drtest_arm(0, WATCHED, DRTEST_WRITE, 4, DRTEST_LOCAL);
  drtest_raise_ud();
  drtest_disarm();
  GUEST_ASSERT_EQ(invalid_opcode_hits, 1);
  GUEST_ASSERT_EQ(invalid_opcode_rip, (uint64_t)drtest_ud_insn);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store32_done, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 0xfeed);
}

static bool increment_then_skip_ud2(struct guest_frame* frame) {
  ++invalid_opcode_hits;
  handler_result = drtest_increment(frame->rip);
  frame->rip += 2;
  return true;
}

DRTEST_CASE(instruction_breakpoint_hit_inside_exception_handler) {
  invalid_opcode_hits = 0;
  guest_set_exception_handler(X86_VECTOR_UD, increment_then_skip_ud2);
  drtest_arm(3, drtest_increment_insn, DRTEST_EXECUTE, 1, DRTEST_GLOBAL);
  drtest_raise_ud();
  drtest_disarm();
  GUEST_ASSERT_EQ(invalid_opcode_hits, 1);
  GUEST_ASSERT_EQ(handler_result, (uint64_t)drtest_ud_insn + 1);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_increment_insn, DR6_CLEAN | DR6_B(3));
  GUEST_ASSERT_EQ(drtest_record.log[0].rax, (uint64_t)drtest_ud_insn);
}

/* PUSH writes the new top of stack: the trap's saved RSP is the watched slot, holding the value. */
DRTEST_CASE(write_watch_on_stack_slot_written_by_push) {
  const uint64_t slot = drtest_push_under_watch(0xabcdef0123456789ULL);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_push_done, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].rsp, slot);
  GUEST_ASSERT_EQ(drtest_record.log[0].stack_top, 0xabcdef0123456789ULL);
}

/* CALL writes its return address: the trap comes at the call target. */
DRTEST_CASE(write_watch_on_stack_slot_written_by_call) {
  const uint64_t slot = drtest_call_under_watch();
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_call_target, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].rsp, slot);
  GUEST_ASSERT_EQ(drtest_record.log[0].stack_top, (uint64_t)drtest_call_return);
}

static void fill_string_buffers(void) {
  for (unsigned i = 0; i < STRING_BYTES; ++i) {
    SOURCE[i] = (uint8_t)(0x10 + i);
    DESTINATION[i] = 0xee;
  }
}

static bool string_copied(void) {
  for (unsigned i = 0; i < STRING_BYTES; ++i)
    if (DESTINATION[i] != SOURCE[i]) return false;
  return true;
}

/* SDM 17.3.1.2: a data breakpoint in a repeated string instruction traps after the iteration that
 * met it, with RIP still at the instruction and RCX/RSI/RDI showing the remaining work; returning
 * finishes the copy. Short strings: a processor may report a hit in a fast-string operation only
 * after a group of iterations (SDM Vol. 1, 7.3.9.3), which none of these lengths starts. */
DRTEST_CASE(rep_movsb_write_watch_traps_after_the_iteration) {
  fill_string_buffers();
  drtest_config.snapshot_address = DESTINATION + 4;
  drtest_config.snapshot_size = 8;
  drtest_arm(0, DESTINATION + 7, DRTEST_WRITE, 1, DRTEST_LOCAL);
  drtest_rep_movsb(DESTINATION, SOURCE, STRING_BYTES);
  drtest_disarm();
  GUEST_ASSERT_TRUE(string_copied());
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_rep_movsb_insn, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].rcx, STRING_BYTES - 8);
  GUEST_ASSERT_EQ(drtest_record.log[0].rsi, (uint64_t)(SOURCE + 8));
  GUEST_ASSERT_EQ(drtest_record.log[0].rdi, (uint64_t)(DESTINATION + 8));
  /* Bytes 4-7 copied, 8-11 not yet. */
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 0xeeeeeeee17161514ULL);
}

DRTEST_CASE(rep_movsb_read_watch_on_source_traps_after_the_iteration) {
  fill_string_buffers();
  drtest_arm(2, SOURCE + 10, DRTEST_READ_WRITE, 2, DRTEST_GLOBAL);
  drtest_rep_movsb(DESTINATION, SOURCE, STRING_BYTES);
  drtest_disarm();
  GUEST_ASSERT_TRUE(string_copied());
  /* Bytes 10 and 11 are each read by their own iteration. */
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_rep_movsb_insn, DR6_CLEAN | DR6_B(2));
  GUEST_ASSERT_EQ(drtest_record.log[0].rcx, STRING_BYTES - 11);
  DRTEST_ASSERT_HIT(1, drtest_rep_movsb_insn, DR6_CLEAN | DR6_B(2));
  GUEST_ASSERT_EQ(drtest_record.log[1].rcx, STRING_BYTES - 12);
}

/* A hit in the last iteration is an ordinary trap after a completed instruction. */
DRTEST_CASE(rep_movsb_write_watch_on_last_byte_traps_after_the_instruction) {
  DRTEST_SKIP_UNDER_QEMU_TCG(
      "completing a REP string instruction before a trap in its last iteration");
  fill_string_buffers();
  drtest_arm(1, DESTINATION + STRING_BYTES - 1, DRTEST_WRITE, 1, DRTEST_LOCAL);
  drtest_rep_movsb(DESTINATION, SOURCE, STRING_BYTES);
  drtest_disarm();
  GUEST_ASSERT_TRUE(string_copied());
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_rep_movsb_done, DR6_CLEAN | DR6_B(1));
  GUEST_ASSERT_EQ(drtest_record.log[0].rcx, 0);
}

DRTEST_CASE(rep_stosq_write_watch_traps_after_the_iteration) {
  uint64_t* const destination = (uint64_t*)DESTINATION;
  for (unsigned i = 0; i < 10; ++i) destination[i] = 0;
  drtest_config.snapshot_address = &destination[5];
  drtest_config.snapshot_size = 16;
  drtest_arm(3, &destination[5], DRTEST_WRITE, 8, DRTEST_GLOBAL);
  drtest_rep_stosq(destination, 0x0123456789abcdefULL, 10);
  drtest_disarm();
  for (unsigned i = 0; i < 10; ++i) GUEST_ASSERT_EQ(destination[i], 0x0123456789abcdefULL);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_rep_stosq_insn, DR6_CLEAN | DR6_B(3));
  GUEST_ASSERT_EQ(drtest_record.log[0].rcx, 4);
  GUEST_ASSERT_EQ(drtest_record.log[0].rdi, (uint64_t)&destination[6]);
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 0x0123456789abcdefULL); /* element 5 stored */
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[1], 0);                     /* element 6 not yet */
}

/* SDM 17.3.1.1: for a trap raised by any iteration of a repeated string instruction but the last,
 * the processor pushes RF = 1. */
DRTEST_CASE(rep_string_trap_before_last_iteration_pushes_rf) {
  DRTEST_SKIP_UNDER_QEMU_TCG("pushing RF for traps inside REP string instructions");
  fill_string_buffers();
  drtest_arm(0, DESTINATION + 3, DRTEST_WRITE, 1, DRTEST_LOCAL);
  drtest_rep_movsb(DESTINATION, SOURCE, STRING_BYTES);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_rep_movsb_insn, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_TRUE((drtest_record.log[0].rflags & X86_RFLAGS_RF) != 0);
}
