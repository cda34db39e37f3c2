/* Runs the cases GUEST_TEST placed in the .guest_cases section and prints the results in the
 * format docs/architecture.md fixes. */
#include <stdbool.h>

#include "exceptions_internal.h"
#include "guestfw/exit.h"
#include "guestfw/guestfw.h"
#include "guestfw/jump.h"
#include "guestfw/start_info.h"
#include "guestfw/test.h"

extern const struct guest_test_case __guest_cases_start[], __guest_cases_end[];

enum outcome { OUTCOME_PASS, OUTCOME_FAIL, OUTCOME_SKIP };

struct running_case {
  const struct guest_test_case* test;
  struct guest_jump_buffer end; /* where guest_test_fail/skip resume */
  enum outcome outcome;
  char reason[256];
};
static struct running_case* current;

static noreturn void end_case(enum outcome outcome, const char* fmt, va_list args) {
  if (current == NULL) { /* an assertion outside any case: nothing to resume, so stop the run */
    guest_printf("%s: ", outcome == OUTCOME_FAIL ? "FAIL" : "SKIP");
    guest_vprintf(fmt, args);
    guest_printf("\n");
    guest_exit(GUESTFW_EXIT_TEST_FAILURE);
  }
  current->outcome = outcome;
  guest_vsnprintf(current->reason, sizeof current->reason, fmt, args);
  guest_longjmp(&current->end, 1);
}

noreturn void guest_test_fail(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  end_case(OUTCOME_FAIL, fmt, args);
}

noreturn void guest_test_skip(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  end_case(OUTCOME_SKIP, fmt, args);
}

/* After the register dump: fail the running case instead of ending the run. */
static void fail_on_unexpected_exception(const struct guest_frame* frame) {
  guest_test_fail("unexpected %s, error code 0x%lx, at rip 0x%lx",
                  guest_exception_name((unsigned)frame->vector), frame->error_code, frame->rip);
}

static enum outcome run_case(const struct guest_test_case* test) {
  struct running_case running = {.test = test, .outcome = OUTCOME_PASS, .reason = ""};
  struct guestfw_exception_state clean_state;
  guestfw_exception_state_save(&clean_state);
  current = &running;
  if (guest_setjmp(&running.end) == 0) test->run();
  current = NULL;
  guestfw_exception_state_restore(&clean_state);

  switch (running.outcome) {
    case OUTCOME_PASS:
      guest_printf("PASS %s\n", test->name);
      break;
    case OUTCOME_FAIL:
      guest_printf("FAIL %s: %s\n", test->name, running.reason);
      break;
    case OUTCOME_SKIP:
      guest_printf("SKIP %s: %s\n", test->name, running.reason);
      break;
  }
  return running.outcome;
}

struct guest_test_counts guest_run_test_cases(void) {
  char filter[64];
  const bool filtered = guest_cmdline_option("filter", filter, sizeof filter);
  unsigned counts[3] = {0, 0, 0};
  guestfw_set_unexpected_exception_hook(fail_on_unexpected_exception);
  for (const struct guest_test_case* test = __guest_cases_start; test < __guest_cases_end; ++test) {
    if (filtered && strstr(test->name, filter) == NULL) continue;
    ++counts[run_case(test)];
  }
  guestfw_set_unexpected_exception_hook(NULL);
  guest_printf("summary: %u passed, %u failed, %u skipped\n", counts[OUTCOME_PASS],
               counts[OUTCOME_FAIL], counts[OUTCOME_SKIP]);
  return (struct guest_test_counts){.passed = counts[OUTCOME_PASS],
                                    .failed = counts[OUTCOME_FAIL],
                                    .skipped = counts[OUTCOME_SKIP]};
}

int guest_run_tests(void) {
  return guest_run_test_cases().failed == 0 ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

/* Images made only of test cases get this guest_main; an image that defines its own wins. */
__attribute__((weak)) int guest_main(void) {
  return guest_run_tests();
}
