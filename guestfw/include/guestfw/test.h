/* The in-guest test framework.
 *
 *   GUEST_TEST(serial_prints_digits) {
 *     char buffer[8];
 *     guest_snprintf(buffer, sizeof buffer, "%d", 42);
 *     GUEST_ASSERT_STREQ(buffer, "42");
 *   }
 *
 * Cases run in the order they appear in the sources (files in the order the image lists them).
 * Each prints one line, "PASS <name>", "FAIL <name>: <reason>" or "SKIP <name>: <reason>", then the
 * run prints "summary: N passed, M failed, K skipped" and exits with 0 (all passed) or 1. The first
 * failed assertion ends its case; so does an unexpected exception (after a register dump). Handlers
 * a case installs are removed when it ends. A "filter=TEXT" word on the command line runs only the
 * cases whose name contains TEXT.
 *
 * An image made only of test cases needs no guest_main: the framework's default runs the cases. */
#pragma once

#include <stdint.h>
#include <stdnoreturn.h>

#include "guestfw/exceptions.h"
#include "guestfw/format.h"
#include "guestfw/string.h"

struct guest_test_case {
  const char* name;
  void (*run)(void);
};

#define GUEST_TEST(name)                                                                       \
  static void guest_test_##name(void);                                                         \
  static const struct guest_test_case guest_test_case_##name                                   \
      __attribute__((used, section(".guest_cases"), aligned(8))) = {#name, guest_test_##name}; \
  static void guest_test_##name(void)

/* Runs every registered case (subject to the filter) and returns the exit value. */
int guest_run_tests(void);

/* The same run without the exit value: the case lines and the summary line, then the counts. The
 * framework's state is global, so one CPU at a time may run cases (drtest runs them on every CPU
 * in turn). */
struct guest_test_counts {
  unsigned passed, failed, skipped;
};
struct guest_test_counts guest_run_test_cases(void);

/* End the current case as failed or skipped with a printf-style reason. */
noreturn void guest_test_fail(const char* fmt, ...) GUESTFW_PRINTF(1, 2);
noreturn void guest_test_skip(const char* fmt, ...) GUESTFW_PRINTF(1, 2);

#define GUEST_FAIL(...) guest_test_fail(__VA_ARGS__)
#define GUEST_SKIP(...) guest_test_skip(__VA_ARGS__)

#define GUEST_ASSERT_TRUE(condition)                                                              \
  do {                                                                                            \
    if (!(condition)) guest_test_fail("%s:%d: %s is false", __FILE_NAME__, __LINE__, #condition); \
  } while (0)

#define GUESTFW_ASSERT_COMPARE(actual, expected, op)                                            \
  do {                                                                                          \
    const uint64_t guestfw_actual_ = (uint64_t)(actual);                                        \
    const uint64_t guestfw_expected_ = (uint64_t)(expected);                                    \
    if (!(guestfw_actual_ op guestfw_expected_))                                                \
      guest_test_fail("%s:%d: %s " #op " %s: got 0x%lx (%ld), expected 0x%lx (%ld)",            \
                      __FILE_NAME__, __LINE__, #actual, #expected, guestfw_actual_,             \
                      (int64_t)guestfw_actual_, guestfw_expected_, (int64_t)guestfw_expected_); \
  } while (0)

/* Integer and pointer comparisons (values compared as uint64_t, printed in hex and decimal). */
#define GUEST_ASSERT_EQ(actual, expected) GUESTFW_ASSERT_COMPARE(actual, expected, ==)
#define GUEST_ASSERT_NE(actual, expected) GUESTFW_ASSERT_COMPARE(actual, expected, !=)

#define GUEST_ASSERT_STREQ(actual, expected)                                                      \
  do {                                                                                            \
    const char* guestfw_actual_ = (actual);                                                       \
    const char* guestfw_expected_ = (expected);                                                   \
    if (strcmp(guestfw_actual_, guestfw_expected_) != 0)                                          \
      guest_test_fail("%s:%d: %s: got \"%s\", expected \"%s\"", __FILE_NAME__, __LINE__, #actual, \
                      guestfw_actual_, guestfw_expected_);                                        \
  } while (0)

/* Runs fn(arg), which must raise exception `vector`; fills *trap (struct guest_trap*). */
#define GUEST_ASSERT_EXCEPTION(vector, fn, arg, trap) \
  guest_test_assert_exception(__FILE_NAME__, __LINE__, (vector), (fn), #fn, (arg), (trap))

void guest_test_assert_exception(const char* file, int line, unsigned vector, void (*fn)(void* arg),
                                 const char* fn_name, void* arg, struct guest_trap* trap);
