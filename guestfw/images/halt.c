/* halt.elf: HLT with interrupts disabled, which drvm reports as "guest halted". */
#include "guestfw/guestfw.h"

int guest_main(void) {
  guest_printf("halt.elf: halting with interrupts disabled\n");
  guest_halt_forever();
}
