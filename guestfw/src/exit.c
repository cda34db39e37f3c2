#include "guestfw/exit.h"

#include "guestfw/x86.h"

noreturn void guest_exit(uint32_t value) {
  outl(GUESTFW_EXIT_PORT, value);
  guest_halt_forever();
}

noreturn void guest_halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt");
}
