/* fault.elf: an unexpected #GP with every register at a known value, so the guest's register dump
 * (and exit value 0x7f) can be checked exactly. */
#include "guestfw/guestfw.h"

/* fault_general_protection.S */
noreturn void fault_take_general_protection(void);

int guest_main(void) {
  guest_printf("fault.elf: taking an unexpected #GP\n");
  fault_take_general_protection();
}
