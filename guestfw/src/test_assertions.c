/* Assertions too long for a macro. */
#include "guestfw/test.h"

void guest_test_assert_exception(const char* file, int line, unsigned vector, void (*fn)(void* arg),
                                 const char* fn_name, void* arg, struct guest_trap* trap) {
  if (!guest_catch_exception(fn, arg, trap)) {
    guest_test_fail("%s:%d: %s raised no exception, expected %s", file, line, fn_name,
                    guest_exception_name(vector));
  }
  if (trap->vector != vector) {
    guest_test_fail("%s:%d: %s raised %s (error code 0x%lx) at rip 0x%lx, expected %s", file, line,
                    fn_name, guest_exception_name((unsigned)trap->vector), trap->error_code,
                    trap->rip, guest_exception_name(vector));
  }
}
