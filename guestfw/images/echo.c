/* echo.elf: reads one line from COM1 (the host's stdin under drvm) and prints it back. */
#include "guestfw/guestfw.h"
#include "guestfw/serial.h"

int guest_main(void) {
  char line[128];
  size_t length = 0;
  for (char c = serial_getc(); c != '\n' && length + 1 < sizeof line; c = serial_getc()) {
    line[length++] = c;
  }
  line[length] = '\0';
  guest_printf("echo: %s\n", line);
  return GUESTFW_EXIT_SUCCESS;
}
