/* The first C code: bring up the console and the IDT, then run the image. */
#include <stdint.h>

#include "exceptions_internal.h"
#include "guestfw/guestfw.h"
#include "start_info_internal.h"

/* Called by guestfw_long_mode_start (long_mode.S) with .bss cleared and the stack set. */
noreturn void guestfw_start(uint64_t start_info_paddr);

noreturn void guestfw_start(uint64_t start_info_paddr) {
  guestfw_start_info_init(start_info_paddr);
  serial_init();
  guestfw_idt_init();
  guest_exit((uint32_t)guest_main());
}
