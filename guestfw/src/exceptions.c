/* The IDT and the dispatcher the stubs call: installed handler, then the innermost
 * guest_catch_exception, then the unexpected-exception hook, then a register dump and exit. */
#include <stdint.h>

#include "exceptions_internal.h"
#include "guestfw/boot_state.h"
#include "guestfw/exit.h"
#include "guestfw/format.h"
#include "guestfw/jump.h"
#include "guestfw/x86.h"

extern const uint64_t guestfw_exception_stubs[GUESTFW_EXCEPTION_VECTORS];

static struct idt_gate idt[GUESTFW_EXCEPTION_VECTORS] __attribute__((aligned(16)));
static guest_exception_handler handlers[GUESTFW_EXCEPTION_VECTORS];
static guestfw_unexpected_exception_hook unexpected_hook;

struct catcher {
  struct guest_jump_buffer resume;
  struct guest_trap* trap;
  struct catcher* outer;
};
static struct catcher* active_catcher;

/* Set while dumping, so an exception inside the dump cannot recurse. */
static bool dumping;

struct idt_gate guestfw_interrupt_gate(uint64_t handler) {
  return (struct idt_gate){
      .offset_low = (uint16_t)handler,
      .selector = GUESTFW_CODE_SELECTOR,
      .ist = 0,
      .type_attributes = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
      .offset_middle = (uint16_t)(handler >> 16),
      .offset_high = (uint32_t)(handler >> 32),
      .reserved = 0,
  };
}

void guestfw_load_idt(const struct idt_gate* table, unsigned count) {
  const struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed))
  pointer = {(uint16_t)(count * sizeof *table - 1), (uint64_t)(uintptr_t)table};
  __asm__ volatile("lidt %0" : : "m"(pointer));
}

void guestfw_idt_init(void) {
  for (unsigned vector = 0; vector < GUESTFW_EXCEPTION_VECTORS; ++vector) {
    idt[vector] = guestfw_interrupt_gate(guestfw_exception_stubs[vector]);
  }
  guestfw_load_idt(idt, GUESTFW_EXCEPTION_VECTORS);
}

guest_exception_handler guest_set_exception_handler(unsigned vector,
                                                    guest_exception_handler handler) {
  if (vector >= GUESTFW_EXCEPTION_VECTORS) return NULL;
  const guest_exception_handler previous = handlers[vector];
  handlers[vector] = handler;
  return previous;
}

void guestfw_set_unexpected_exception_hook(guestfw_unexpected_exception_hook hook) {
  unexpected_hook = hook;
}

void guestfw_exception_state_save(struct guestfw_exception_state* state) {
  for (unsigned i = 0; i < GUESTFW_EXCEPTION_VECTORS; ++i) state->handlers[i] = handlers[i];
  state->catcher = active_catcher;
}

void guestfw_exception_state_restore(const struct guestfw_exception_state* state) {
  for (unsigned i = 0; i < GUESTFW_EXCEPTION_VECTORS; ++i) handlers[i] = state->handlers[i];
  active_catcher = state->catcher;
}

bool guest_catch_exception(void (*fn)(void* arg), void* arg, struct guest_trap* trap) {
  struct catcher catcher = {.trap = trap, .outer = active_catcher};
  if (guest_setjmp(&catcher.resume) != 0) return true; /* the dispatcher already popped it */
  active_catcher = &catcher;
  fn(arg);
  active_catcher = catcher.outer;
  return false;
}

/* Called by exception_common (exception_stubs.S). */
void guestfw_exception_dispatch(struct guest_frame* frame);

void guestfw_exception_dispatch(struct guest_frame* frame) {
  const unsigned vector = (unsigned)frame->vector;
  if (handlers[vector] != NULL && handlers[vector](frame)) return;

  if (active_catcher != NULL) {
    struct catcher* catcher = active_catcher;
    active_catcher = catcher->outer;
    *catcher->trap = (struct guest_trap){
        .vector = frame->vector,
        .error_code = frame->error_code,
        .rip = frame->rip,
        .cr2 = read_cr2(),
    };
    guest_longjmp(&catcher->resume, 1);
  }

  if (dumping) {
    guest_printf("guestfw: %s during the register dump\n", guest_exception_name(vector));
    guest_exit(GUESTFW_EXIT_UNEXPECTED_EXCEPTION);
  }
  dumping = true;
  guest_dump_frame(frame);
  dumping = false;
  if (unexpected_hook != NULL) unexpected_hook(frame);
  guest_exit(GUESTFW_EXIT_UNEXPECTED_EXCEPTION);
}

const char* guest_exception_name(unsigned vector) {
  static const char* const names[GUESTFW_EXCEPTION_VECTORS] = {
      [0] = "#DE divide error",
      [1] = "#DB debug",
      [2] = "NMI",
      [3] = "#BP breakpoint",
      [4] = "#OF overflow",
      [5] = "#BR bound range exceeded",
      [6] = "#UD invalid opcode",
      [7] = "#NM device not available",
      [8] = "#DF double fault",
      [9] = "coprocessor segment overrun",
      [10] = "#TS invalid TSS",
      [11] = "#NP segment not present",
      [12] = "#SS stack fault",
      [13] = "#GP general protection",
      [14] = "#PF page fault",
      [16] = "#MF x87 floating-point error",
      [17] = "#AC alignment check",
      [18] = "#MC machine check",
      [19] = "#XM SIMD floating-point",
      [20] = "#VE virtualization exception",
      [21] = "#CP control protection",
      [28] = "#HV hypervisor injection",
      [29] = "#VC VMM communication",
      [30] = "#SX security exception",
  };
  if (vector >= GUESTFW_EXCEPTION_VECTORS || names[vector] == NULL) return "reserved";
  return names[vector];
}
