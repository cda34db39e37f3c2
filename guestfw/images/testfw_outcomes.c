/* testfw-outcomes.elf: every outcome the test framework reports (pass, failed assertions, skip, an
 * unexpected exception inside a case, handlers dropped between cases), so the result lines, the
 * summary and exit value 1 can be checked exactly. */
#include "guestfw/guestfw.h"
#include "guestfw/test.h"

/* selftest_faults.S */
void selftest_raise_ud(void* unused);

static void return_normally(void* unused) {
  (void)unused;
}

static bool step_over_ud2(struct guest_frame* frame) {
  frame->rip += 2;
  return true;
}

GUEST_TEST(outcome_pass) {}

GUEST_TEST(outcome_assert_eq_fails) {
  volatile uint64_t answer = 41;
  GUEST_ASSERT_EQ(answer, 42);
}

GUEST_TEST(outcome_assert_streq_fails) {
  GUEST_ASSERT_STREQ("abc", "abd");
}

GUEST_TEST(outcome_skip) {
  GUEST_SKIP("needs %s", "hardware data breakpoints");
}

GUEST_TEST(outcome_unexpected_exception) {
  selftest_raise_ud(NULL);
}

GUEST_TEST(outcome_fails_leaving_a_handler) {
  guest_set_exception_handler(X86_VECTOR_UD, step_over_ud2);
  GUEST_FAIL("left a #UD handler installed");
}

/* Passes only if the previous case's handler is gone (it would step over the ud2). */
GUEST_TEST(outcome_handlers_reset_between_cases) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_UD, selftest_raise_ud, NULL, &trap);
}

GUEST_TEST(outcome_expected_exception_missing) {
  struct guest_trap trap;
  GUEST_ASSERT_EXCEPTION(X86_VECTOR_UD, return_normally, NULL, &trap);
}

GUEST_TEST(outcome_pass_after_failures) {}
