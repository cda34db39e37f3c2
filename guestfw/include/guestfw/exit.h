/* Ending a run. The exit port follows QEMU's isa-debug-exit at 0xf4: writing v makes the VMM exit
 * with status (v << 1) | 1. */
#pragma once

#include <stdint.h>
#include <stdnoreturn.h>

#define GUESTFW_EXIT_PORT 0xf4

/* Exit values used by guestfw itself. */
#define GUESTFW_EXIT_SUCCESS 0                 /* image done; every test case passed */
#define GUESTFW_EXIT_TEST_FAILURE 1            /* at least one test case failed */
#define GUESTFW_EXIT_UNEXPECTED_EXCEPTION 0x7f /* an exception nobody handled (status 255) */

/* Writes value to the exit port; if the run does not end there, halts forever. */
noreturn void guest_exit(uint32_t value);
/* cli; hlt, forever. */
noreturn void guest_halt_forever(void);
