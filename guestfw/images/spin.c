/* spin.elf: never ends by itself (interrupts disabled, pausing), for --timeout. */
#include "guestfw/guestfw.h"

int guest_main(void) {
  guest_printf("spin.elf: spinning with interrupts disabled\n");
  for (;;) cpu_pause();
}
