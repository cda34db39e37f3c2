/* ioport.elf: reads and writes I/O ports no device claims (both VMMs read all ones and drop
 * writes), for drvm's --trace-io and its unknown-port handling. */
#include "guestfw/guestfw.h"

int guest_main(void) {
  guest_printf("ioport.elf: accessing unclaimed I/O ports\n");
  const uint8_t port80 = inb(0x80);
  const uint16_t port1234_word = inw(0x1234);
  const uint32_t port1234_dword = inl(0x1234);
  guest_printf("inb 0x80: 0x%02x\n", port80);
  guest_printf("inw 0x1234: 0x%04x\n", port1234_word);
  guest_printf("inl 0x1234: 0x%08x\n", port1234_dword);
  outb(0x80, 0x42);
  guest_printf("outb 0x80: 0x42\n");
  return GUESTFW_EXIT_SUCCESS;
}
