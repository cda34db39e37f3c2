/* The first C code: bring up the console and the IDT, then run the image. */
#include <stdint.h>

#include "exceptions_internal.h"
#include "guestfw/guestfw.h"
#include "start_info_internal.h"

/* Called by guestfw_long_mode_start (long_mode.S) with .bss cleared and the stack set; protocol is
 * GUESTFW_BOOT_PVH or GUESTFW_BOOT_MULTIBOOT (boot_state.h). */
noreturn void guestfw_start(uint64_t boot_info_paddr, uint64_t protocol);

noreturn void guestfw_start(uint64_t boot_info_paddr, uint64_t protocol) {
  guestfw_start_info_init(boot_info_paddr, (uint32_t)protocol);
  serial_init();
  guestfw_idt_init();
  guest_exit((uint32_t)guest_main());
}
