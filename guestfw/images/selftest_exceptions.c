/* selftest.elf, exceptions: delivery through the IDT, the saved frame, catching, and handlers that
 * resume the interrupted code. */
#include "guestfw/boot_state.h"
#include "guestfw/guestfw.h"
#include "guestfw/test.h"

/* selftest_faults.S */
void selftest_raise_ud(void* unused);
void selftest_raise_de(void* unused);
void selftest_raise_gp(void* unused);
void selftest_read_unmapped(void* address);
void selftest_write_unmapped(void* address);
int selftest_ud_then_return_one(void);
uint64_t selftest_int3_preserving_registers(uint64_t out[4]);
extern const char selftest_ud_instruction[], selftest_de_instruction[], selftest_gp_instruction[];
extern const char selftest_pf_read_instruction[], selftest_pf_write_instruction[];

#define UNMAPPED_ADDRESS (GUESTFW_IDENTITY_MAP_END + 0x1238)
#define PF_ERROR_WRITE 0x2

static void return_normally(void* unused) {
  (void)unused;
}

GUEST_TEST(exception_catch_without_fault) {
  struct guest_trap trap = {0};
  GUEST_ASSERT_TRUE(!guest_catch_exception(return_normally, NULL, &trap));
}

static struct guest_frame breakpoint_frame;
static unsigned breakpoint_hits;

static bool record_breakpoint(struct guest_frame* frame) {
  breakpoint_frame = *frame;
  ++breakpoint_hits;
  return true;
}

GUEST_TEST(exception_breakpoint_resumes_after_int3) {
  guest_set_exception_handler(X86_VECTOR_BP, record_breakpoint);
  uint64_t after_handler[4];
  const uint64_t resumed_at = selftest_int3_preserving_registers(after_handler);
  GUEST_ASSERT_EQ(breakpoint_hits, 1);
  GUEST_ASSERT_EQ(breakpoint_frame.vector, X86_VECTOR_BP);
  GUEST_ASSERT_EQ(breakpoint_frame.rip, resumed_at); /* a trap: RIP after the int3 */
  GUEST_ASSERT_EQ(breakpoint_frame.cs, GUESTFW_CODE_SELECTOR);
  GUEST_ASSERT_EQ(breakpoint_frame.r8, 0x0808080808080808);
  /* The stubs restore the registers C code clobbers. */
  GUEST_ASSERT_EQ(after_handler[0], 0x0808080808080808);
  GUEST_ASSERT_EQ(after_handler[1], 0x0909090909090909);
  GUEST_ASSERT_EQ(after_handler[2], 0x1010101010101010);
  GUEST_ASSERT_EQ(after_handler[3], 0x1111111111111111);
}

GUEST_TEST(exception_invalid_opcode) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_UD, selftest_raise_ud, NULL, &trap);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)selftest_ud_instruction);
  GUEST_ASSERT_EQ(trap.error_code, 0);
}

GUEST_TEST(exception_divide_error) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_DE, selftest_raise_de, NULL, &trap);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)selftest_de_instruction);
}

GUEST_TEST(exception_general_protection_noncanonical) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_GP, selftest_raise_gp, NULL, &trap);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)selftest_gp_instruction);
  GUEST_ASSERT_EQ(trap.error_code, 0);
}

GUEST_TEST(exception_page_fault_read_sets_cr2) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_PF, selftest_read_unmapped, (void*)UNMAPPED_ADDRESS, &trap);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)selftest_pf_read_instruction);
  GUEST_ASSERT_EQ(trap.cr2, UNMAPPED_ADDRESS);
  GUEST_ASSERT_EQ(trap.error_code, 0); /* not present, read, supervisor */
}

GUEST_TEST(exception_page_fault_write_error_code) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_PF, selftest_write_unmapped, (void*)(UNMAPPED_ADDRESS + 8),
                         &trap);
  GUEST_ASSERT_EQ(trap.rip, (uint64_t)selftest_pf_write_instruction);
  GUEST_ASSERT_EQ(trap.cr2, UNMAPPED_ADDRESS + 8);
  GUEST_ASSERT_EQ(trap.error_code, PF_ERROR_WRITE);
}

static bool skip_ud2(struct guest_frame* frame) {
  frame->rip += 2; /* ud2 is 0f 0b */
  return true;
}

GUEST_TEST(exception_handler_moves_rip) {
  guest_set_exception_handler(X86_VECTOR_UD, skip_ud2);
  GUEST_ASSERT_EQ(selftest_ud_then_return_one(), 1);
}

static void raise_ud_inside_catch(void* inner_trap) {
  guest_catch_exception(selftest_raise_ud, NULL, inner_trap);
  selftest_raise_de(NULL);
}

GUEST_TEST(exception_catch_nests) {
  struct guest_trap inner = {0}, outer;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_DE, raise_ud_inside_catch, &inner, &outer);
  GUEST_ASSERT_EQ(inner.vector, X86_VECTOR_UD);
  GUEST_ASSERT_EQ(outer.rip, (uint64_t)selftest_de_instruction);
}
