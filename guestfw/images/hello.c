/* hello.elf / hello-elf64.elf: the banner, the command line if there is one, a clean exit. */
#include "guestfw/guestfw.h"

int guest_main(void) {
  guest_printf("drvm guestfw: hello from the guest\n");
  const char* cmdline = guest_cmdline();
  if (cmdline[0] != '\0') guest_printf("cmdline: %s\n", cmdline);
  return GUESTFW_EXIT_SUCCESS;
}
