/* Exception plumbing shared by the runtime's own files (start.c, the test framework). */
#pragma once

#include "guestfw/exceptions.h"

/* Loads the IDT with the stubs for vectors 0-31. */
void guestfw_idt_init(void);

/* Called for an exception no handler or catcher took, before the register dump and exit; it may
 * end the current piece of work with guest_longjmp instead of returning. */
typedef void (*guestfw_unexpected_exception_hook)(const struct guest_frame* frame);
void guestfw_set_unexpected_exception_hook(guestfw_unexpected_exception_hook hook);

/* The installed handlers and active catchers, so the test framework can give each case a clean
 * slate and drop whatever a case left behind. */
struct guestfw_exception_state {
  guest_exception_handler handlers[GUESTFW_EXCEPTION_VECTORS];
  void* catcher;
};
void guestfw_exception_state_save(struct guestfw_exception_state* state);
void guestfw_exception_state_restore(const struct guestfw_exception_state* state);
