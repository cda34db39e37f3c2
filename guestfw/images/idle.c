/* idle.elf: enables interrupts and halts with nothing armed (no timer, no device interrupt), which
 * drvm reports as "guest halted": no interrupt can come. QEMU waits forever. */
#include "guestfw/guestfw.h"
#include "guestfw/interrupts.h"

int guest_main(void) {
  guest_interrupts_init();
  guest_printf("idle.elf: waiting for an interrupt with nothing armed\n");
  for (;;) __asm__ volatile("sti; hlt");
}
