/* Exception plumbing shared by the runtime's own files (start.c, the test framework). */
#pragma once

#include "guestfw/exceptions.h"

/* Loads the IDT with the stubs for vectors 0-31. */
void guestfw_idt_init(void);

/* A 64-bit IDT gate. */
struct idt_gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attributes;
  uint16_t offset_middle;
  uint32_t offset_high;
  uint32_t reserved;
} __attribute__((packed));

/* A present DPL-0 interrupt gate (IF cleared on entry) to `handler` in the runtime's code
 * segment. */
struct idt_gate guestfw_interrupt_gate(uint64_t handler);
/* Loads IDTR with the `count` gates at `table`. */
void guestfw_load_idt(const struct idt_gate* table, unsigned count);

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
