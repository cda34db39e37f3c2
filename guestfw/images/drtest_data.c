/* drtest.elf, data breakpoints: write and read/write watchpoints of every length, alignment,
 * partial overlaps, page-straddling accesses, several slots, enables, and exact counts
 * (SDM 17.2.4, 17.2.5, 17.3.1.2). A data breakpoint is a trap: the access has completed and the
 * saved RIP is the next instruction. */
#include "drtest.h"

#define AREA(offset) (drtest_area + (offset))
/* The first byte of the second watched page. */
#define PAGE_BOUNDARY AREA(DRTEST_PAGE)

typedef void (*store_fn)(volatile void*, uint64_t);

/* A length-N watch at an N-aligned base covers exactly [base, base + N): a byte store to its first
 * and last bytes triggers, one just before or just after does not. */
static void check_write_watch_length(unsigned length) {
  uint8_t* const base = AREA(0x100);
  drtest_config.snapshot_address = base + length - 1;
  drtest_config.snapshot_size = 1;
  drtest_arm(0, base, DRTEST_WRITE, length, DRTEST_LOCAL);
  drtest_store8(base - 1, 0x11);
  drtest_store8(base + length, 0x22);
  drtest_store8(base, 0x33);
  drtest_store8(base + length - 1, 0x44);
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_store8_done, DR6_CLEAN | DR6_B(0));
  DRTEST_ASSERT_HIT(1, drtest_store8_done, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[1].snapshot[0], 0x44);
}

DRTEST_CASE(write_watch_length_1) {
  check_write_watch_length(1);
}
DRTEST_CASE(write_watch_length_2) {
  check_write_watch_length(2);
}
DRTEST_CASE(write_watch_length_4) {
  check_write_watch_length(4);
}
DRTEST_CASE(write_watch_length_8) {
  check_write_watch_length(8);
}

/* The same for loads under a read/write watch. */
static void check_read_write_watch_length(unsigned length) {
  uint8_t* const base = AREA(0x180);
  for (int i = -1; i <= 8; ++i) base[i] = (uint8_t)(0xa1 + i);
  drtest_arm(1, base, DRTEST_READ_WRITE, length, DRTEST_GLOBAL);
  drtest_load8(base - 1);
  drtest_load8(base + length);
  const uint8_t first = drtest_load8(base);
  const uint8_t last = drtest_load8(base + length - 1);
  drtest_disarm();
  GUEST_ASSERT_EQ(first, 0xa1);
  GUEST_ASSERT_EQ(last, 0xa0 + length);
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_load8_done, DR6_CLEAN | DR6_B(1));
  DRTEST_ASSERT_HIT(1, drtest_load8_done, DR6_CLEAN | DR6_B(1));
  /* The load completed before the trap: its value is already in RAX. */
  GUEST_ASSERT_EQ(drtest_record.log[1].rax, 0xa0 + length);
}

DRTEST_CASE(read_write_watch_length_1) {
  check_read_write_watch_length(1);
}
DRTEST_CASE(read_write_watch_length_2) {
  check_read_write_watch_length(2);
}
DRTEST_CASE(read_write_watch_length_4) {
  check_read_write_watch_length(4);
}
DRTEST_CASE(read_write_watch_length_8) {
  check_read_write_watch_length(8);
}

/* SDM 17.3.1.2: a trap. RIP is the next instruction, the new value is in memory, RF is pushed as it
 * was (0: a trap after a completed instruction). */
DRTEST_CASE(write_watch_traps_after_the_store) {
  uint8_t* const watched = AREA(0x200);
  *(volatile uint64_t*)watched = 0;
  drtest_config.snapshot_address = watched;
  drtest_config.snapshot_size = 8;
  drtest_arm(0, watched, DRTEST_WRITE, 8, DRTEST_LOCAL);
  drtest_store64(watched, 0x1122334455667788ULL);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store64_done, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 0x1122334455667788ULL);
  GUEST_ASSERT_EQ(drtest_record.log[0].rflags & X86_RFLAGS_RF, 0);
}

DRTEST_CASE(write_watch_ignores_loads) {
  uint8_t* const watched = AREA(0x208);
  drtest_arm(2, watched, DRTEST_WRITE, 8, DRTEST_LOCAL);
  drtest_load8(watched + 3);
  drtest_load16(watched + 2);
  drtest_load32(watched + 4);
  drtest_load64(watched);
  const unsigned hits_after_loads = drtest_record.hits;
  drtest_store16(watched + 6, 0xbeef);
  drtest_disarm();
  GUEST_ASSERT_EQ(hits_after_loads, 0);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store16_done, DR6_CLEAN | DR6_B(2));
}

/* Storing the value already there is still a write. */
DRTEST_CASE(write_watch_same_value_store_triggers) {
  uint8_t* const watched = AREA(0x210);
  *(volatile uint32_t*)watched = 0x77;
  drtest_arm(3, watched, DRTEST_WRITE, 4, DRTEST_GLOBAL);
  drtest_store32(watched, 0x77);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store32_done, DR6_CLEAN | DR6_B(3));
}

DRTEST_CASE(read_write_watch_triggers_on_store) {
  uint8_t* const watched = AREA(0x218);
  drtest_config.snapshot_address = watched;
  drtest_config.snapshot_size = 2;
  drtest_arm(0, watched, DRTEST_READ_WRITE, 2, DRTEST_LOCAL);
  drtest_store16(watched, 0x1234);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store16_done, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 0x1234);
}

/* One instruction that reads and writes the watched bytes raises one #DB. */
DRTEST_CASE(write_watch_read_modify_write_hits_once) {
  uint8_t* const watched = AREA(0x220);
  *(volatile uint32_t*)watched = 41;
  drtest_config.snapshot_address = watched;
  drtest_config.snapshot_size = 4;
  drtest_arm(1, watched, DRTEST_WRITE, 4, DRTEST_LOCAL);
  drtest_increment32(watched);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_increment32_done, DR6_CLEAN | DR6_B(1));
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 42);
}

DRTEST_CASE(read_write_watch_read_modify_write_hits_once) {
  uint8_t* const watched = AREA(0x228);
  *(volatile uint32_t*)watched = 99;
  drtest_arm(2, watched, DRTEST_READ_WRITE, 4, DRTEST_GLOBAL);
  drtest_increment32(watched);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_increment32_done, DR6_CLEAN | DR6_B(2));
  GUEST_ASSERT_EQ(*(volatile uint32_t*)watched, 100);
}

/* SDM 17.2.5: the processor uses LENn to mask the low bits of DRn, so an unaligned address watches
 * the aligned range that contains it. */
DRTEST_CASE(unaligned_breakpoint_address_is_masked) {
  DRTEST_SKIP_UNDER_QEMU_TCG("the LENn masking of unaligned breakpoint addresses");
  uint8_t* const base = AREA(0x240);                       /* 8-aligned */
  drtest_arm(0, base + 5, DRTEST_WRITE, 4, DRTEST_LOCAL);  /* watches base+4 .. base+7 */
  drtest_arm(1, base + 19, DRTEST_WRITE, 8, DRTEST_LOCAL); /* watches base+16 .. base+23 */
  drtest_arm(2, base + 33, DRTEST_WRITE, 2, DRTEST_LOCAL); /* watches base+32 .. base+33 */
  drtest_store8(base + 3, 1);
  drtest_store8(base + 8, 1);
  drtest_store8(base + 15, 1);
  drtest_store8(base + 24, 1);
  drtest_store8(base + 31, 1);
  drtest_store8(base + 34, 1);
  const unsigned hits_outside = drtest_record.hits;
  drtest_store8(base + 4, 1);
  drtest_store8(base + 16, 1);
  drtest_store8(base + 32, 1);
  drtest_disarm();
  GUEST_ASSERT_EQ(hits_outside, 0);
  DRTEST_ASSERT_HITS(3);
  DRTEST_ASSERT_HIT(0, drtest_store8_done, DR6_CLEAN | DR6_B(0));
  DRTEST_ASSERT_HIT(1, drtest_store8_done, DR6_CLEAN | DR6_B(1));
  DRTEST_ASSERT_HIT(2, drtest_store8_done, DR6_CLEAN | DR6_B(2));
}

/* SDM 17.2.5: a data breakpoint triggers if any byte of the access is in the watched range. */
DRTEST_CASE(wide_store_overlapping_byte_watch_triggers) {
  uint8_t* const base = AREA(0x280);
  drtest_arm(0, base + 5, DRTEST_WRITE, 1, DRTEST_LOCAL);
  drtest_store32(base, 0);     /* base .. base+3 */
  drtest_store16(base + 6, 0); /* base+6 .. base+7 */
  const unsigned hits_outside = drtest_record.hits;
  drtest_store64(base, 0x0102030405060708ULL);
  drtest_store32(base + 4, 0);
  drtest_disarm();
  GUEST_ASSERT_EQ(hits_outside, 0);
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_store64_done, DR6_CLEAN | DR6_B(0));
  DRTEST_ASSERT_HIT(1, drtest_store32_done, DR6_CLEAN | DR6_B(0));
}

DRTEST_CASE(unaligned_store_crossing_range_start_triggers) {
  uint8_t* const watched = AREA(0x2c0);
  drtest_arm(1, watched, DRTEST_WRITE, 4, DRTEST_LOCAL);
  drtest_store32(watched - 4, 0);          /* ends just before */
  drtest_store32(watched - 2, 0xaabbccdd); /* two bytes before, two inside */
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store32_done, DR6_CLEAN | DR6_B(1));
  GUEST_ASSERT_EQ(*(volatile uint16_t*)watched, 0xaabb);
}

DRTEST_CASE(unaligned_store_crossing_range_end_triggers) {
  uint8_t* const watched = AREA(0x2e0);
  drtest_arm(3, watched, DRTEST_WRITE, 4, DRTEST_GLOBAL);
  drtest_store32(watched + 4, 0);                     /* starts just after */
  drtest_store64(watched + 3, 0x1122334455667788ULL); /* one byte inside, seven after */
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store64_done, DR6_CLEAN | DR6_B(3));
  GUEST_ASSERT_EQ(watched[3], 0x88);
}

/* Unaligned stores that end just before or start just after a watched range (one of them also
 * crossing a page boundary) do not trigger it. */
DRTEST_CASE(unaligned_stores_beside_watch_do_not_trigger) {
  DRTEST_SKIP_UNDER_QEMU_TCG("exact ranges for unaligned stores to a watched page");
  drtest_arm(1, PAGE_BOUNDARY + 8, DRTEST_WRITE, 4, DRTEST_LOCAL);
  /* The watch covers PAGE_BOUNDARY + 8 .. + 11. */
  drtest_store64(PAGE_BOUNDARY + 12, 0);
  drtest_store32(PAGE_BOUNDARY + 3, 0);
  drtest_store16(PAGE_BOUNDARY + 13, 0);
  drtest_store64(PAGE_BOUNDARY - 3, 0);
  const unsigned hits_outside = drtest_record.hits;
  drtest_store16(PAGE_BOUNDARY + 11, 0);
  drtest_disarm();
  GUEST_ASSERT_EQ(hits_outside, 0);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store16_done, DR6_CLEAN | DR6_B(1));
}

/* An 8-byte store at 4 bytes before a page boundary, watched on the second page only: one #DB after
 * both halves are written. */
DRTEST_CASE(store_straddling_page_boundary_triggers_watch_on_second_page) {
  drtest_config.snapshot_address = PAGE_BOUNDARY - 4;
  drtest_config.snapshot_size = 8;
  drtest_arm(0, PAGE_BOUNDARY + 2, DRTEST_WRITE, 1, DRTEST_LOCAL);
  drtest_store64(PAGE_BOUNDARY - 8, 0);
  drtest_store64(PAGE_BOUNDARY + 8, 0);
  const unsigned hits_outside = drtest_record.hits;
  drtest_store64(PAGE_BOUNDARY - 4, 0xa1a2a3a4b1b2b3b4ULL);
  drtest_disarm();
  GUEST_ASSERT_EQ(hits_outside, 0);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store64_done, DR6_CLEAN | DR6_B(0));
  GUEST_ASSERT_EQ(drtest_record.log[0].snapshot[0], 0xa1a2a3a4b1b2b3b4ULL);
}

DRTEST_CASE(load_straddling_page_boundary_triggers_watch_on_second_page) {
  *(volatile uint64_t*)(PAGE_BOUNDARY - 6) = 0x0807060504030201ULL;
  drtest_arm(2, PAGE_BOUNDARY, DRTEST_READ_WRITE, 2, DRTEST_LOCAL);
  const uint64_t value = drtest_load64(PAGE_BOUNDARY - 6);
  drtest_disarm();
  GUEST_ASSERT_EQ(value, 0x0807060504030201ULL);
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_load64_done, DR6_CLEAN | DR6_B(2));
  GUEST_ASSERT_EQ(drtest_record.log[0].rax, 0x0807060504030201ULL);
}

/* SDM 17.2.5: instruction fetches never trigger data breakpoints; loads of the same bytes do. */
DRTEST_CASE(read_write_watch_ignores_instruction_fetch) {
  const uint8_t* const code = (const uint8_t*)drtest_isolated_function;
  drtest_arm(0, code, DRTEST_READ_WRITE, 1, DRTEST_LOCAL);
  const uint32_t result = drtest_isolated_function();
  const unsigned hits_after_call = drtest_record.hits;
  const uint8_t opcode = drtest_load8(code);
  drtest_disarm();
  GUEST_ASSERT_EQ(result, 0x5a);
  GUEST_ASSERT_EQ(hits_after_call, 0);
  GUEST_ASSERT_EQ(opcode, 0xb8); /* mov $imm32, %eax */
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_load8_done, DR6_CLEAN | DR6_B(0));
}

/* SDM 17.2.3: one #DB reports every breakpoint condition the instruction met. */
DRTEST_CASE(one_store_hitting_two_slots_reports_both) {
  DRTEST_SKIP_UNDER_QEMU_TCG("reporting several data breakpoints met by one instruction");
  uint8_t* const base = AREA(0x300);
  drtest_arm(0, base + 1, DRTEST_WRITE, 1, DRTEST_LOCAL);
  drtest_arm(1, base + 4, DRTEST_WRITE, 2, DRTEST_LOCAL);
  drtest_arm(3, base + 8, DRTEST_WRITE, 8, DRTEST_LOCAL); /* not touched */
  drtest_store64(base, 0);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store64_done, DR6_CLEAN | DR6_B(0) | DR6_B(1));
}

DRTEST_CASE(two_slots_on_same_address_report_by_type) {
  DRTEST_SKIP_UNDER_QEMU_TCG("reporting several data breakpoints met by one instruction");
  uint8_t* const watched = AREA(0x320);
  drtest_arm(0, watched, DRTEST_WRITE, 4, DRTEST_LOCAL);
  drtest_arm(2, watched, DRTEST_READ_WRITE, 4, DRTEST_GLOBAL);
  drtest_store32(watched, 5);
  drtest_load32(watched);
  drtest_disarm();
  DRTEST_ASSERT_HITS(2);
  DRTEST_ASSERT_HIT(0, drtest_store32_done, DR6_CLEAN | DR6_B(0) | DR6_B(2));
  DRTEST_ASSERT_HIT(1, drtest_load32_done, DR6_CLEAN | DR6_B(2));
}

/* Four slots armed at once; each access names exactly the slot it hit. */
DRTEST_CASE(four_armed_slots_each_reported_alone) {
  DRTEST_SKIP_UNDER_QEMU_TCG(
      "clearing the hit state of data breakpoints met by earlier instructions");
  uint8_t* const base = AREA(0x340);
  drtest_arm(0, base + 0x00, DRTEST_WRITE, 8, DRTEST_LOCAL);
  drtest_arm(1, base + 0x10, DRTEST_READ_WRITE, 4, DRTEST_GLOBAL);
  drtest_arm(2, base + 0x20, DRTEST_WRITE, 2, DRTEST_GLOBAL);
  drtest_arm(3, base + 0x30, DRTEST_READ_WRITE, 1, DRTEST_LOCAL);
  drtest_store8(base + 0x30, 1);
  drtest_store16(base + 0x20, 1);
  drtest_load32(base + 0x00); /* slot 0 is write-only */
  drtest_load32(base + 0x10);
  drtest_store64(base + 0x00, 1);
  drtest_load8(base + 0x30);
  drtest_disarm();
  DRTEST_ASSERT_HITS(5);
  DRTEST_ASSERT_HIT(0, drtest_store8_done, DR6_CLEAN | DR6_B(3));
  DRTEST_ASSERT_HIT(1, drtest_store16_done, DR6_CLEAN | DR6_B(2));
  DRTEST_ASSERT_HIT(2, drtest_load32_done, DR6_CLEAN | DR6_B(1));
  DRTEST_ASSERT_HIT(3, drtest_store64_done, DR6_CLEAN | DR6_B(0));
  DRTEST_ASSERT_HIT(4, drtest_load8_done, DR6_CLEAN | DR6_B(3));
}

/* SDM 17.2.4: Ln and Gn each enable slot n on their own. */
static void check_each_slot_enabled_by(enum drtest_enable enable) {
  uint8_t* const watched = AREA(0x380);
  for (unsigned slot = 0; slot < 4; ++slot) {
    drtest_arm(slot, watched + 8 * slot, DRTEST_WRITE, 8, enable);
    drtest_store64(watched + 8 * slot, slot);
    drtest_disarm();
  }
  DRTEST_ASSERT_HITS(4);
  for (unsigned slot = 0; slot < 4; ++slot)
    DRTEST_ASSERT_HIT(slot, drtest_store64_done, DR6_CLEAN | DR6_B(slot));
}

DRTEST_CASE(local_enable_arms_each_slot) {
  check_each_slot_enabled_by(DRTEST_LOCAL);
}

DRTEST_CASE(global_enable_arms_each_slot) {
  check_each_slot_enabled_by(DRTEST_GLOBAL);
}

/* A slot with neither Ln nor Gn never raises #DB, whatever its type, length and address. (It may
 * still set its Bn bit, SDM 17.2.3, so DR6 is not checked here.) */
DRTEST_CASE(disabled_slots_never_fire) {
  uint8_t* const watched = AREA(0x3c0);
  drtest_arm(0, watched, DRTEST_WRITE, 8, DRTEST_DISABLED);
  drtest_arm(1, watched, DRTEST_READ_WRITE, 4, DRTEST_DISABLED);
  drtest_arm(2, watched, DRTEST_READ_WRITE, 1, DRTEST_DISABLED);
  drtest_arm(3, drtest_store8, DRTEST_EXECUTE, 1, DRTEST_DISABLED);
  drtest_store8(watched, 1);
  drtest_load64(watched);
  drtest_store64(watched, 2);
  drtest_disarm();
  DRTEST_ASSERT_HITS(0);
}

/* Enabling slot 1 does not arm slot 0, even with slot 0 fully configured. */
DRTEST_CASE(enable_bits_arm_only_their_own_slot) {
  uint8_t* const base = AREA(0x3e0);
  drtest_arm(0, base, DRTEST_WRITE, 4, DRTEST_DISABLED);
  drtest_arm(1, base + 0x10, DRTEST_WRITE, 4, DRTEST_GLOBAL);
  drtest_store32(base, 1);
  drtest_store32(base + 0x10, 1);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store32_done, DR6_CLEAN | DR6_B(1));
}

/* SDM 17.2.3: the processor never clears DR6 bits other than B0-B3: a BS left set by software is
 * still set when a data breakpoint is reported. */
DRTEST_CASE(dr6_bits_other_than_b0_b3_survive_a_hit) {
  uint8_t* const watched = AREA(0x400);
  write_dr6(DR6_CLEAN | DR6_BS);
  drtest_arm(0, watched, DRTEST_WRITE, 1, DRTEST_LOCAL);
  drtest_store8(watched, 1);
  drtest_disarm();
  DRTEST_ASSERT_HITS(1);
  DRTEST_ASSERT_HIT(0, drtest_store8_done, DR6_CLEAN | DR6_BS | DR6_B(0));
}

/* 100 stores in a loop: exactly 100 #DBs, each after its store, each seeing its own value. */
DRTEST_CASE(write_watch_counts_100_stores_exactly) {
  uint8_t* const watched = AREA(0x420);
  drtest_config.snapshot_address = watched;
  drtest_config.snapshot_size = 4;
  drtest_arm(2, watched, DRTEST_WRITE, 4, DRTEST_LOCAL);
  drtest_store_loop(watched, 100);
  drtest_disarm();
  DRTEST_ASSERT_HITS(100);
  for (unsigned i = 0; i < DRTEST_LOG_SIZE; ++i) {
    DRTEST_ASSERT_HIT(i, drtest_store_loop_done, DR6_CLEAN | DR6_B(2));
    GUEST_ASSERT_EQ(drtest_record.log[i].snapshot[0], 100 - i);
    GUEST_ASSERT_EQ(drtest_record.log[i].rcx, 100 - i);
  }
}
