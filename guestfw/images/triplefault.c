/* triplefault.elf: an IDT with limit 0, then an exception: its delivery raises #GP, that one #DF,
 * and that one a triple fault (shutdown). The exception is #UD (ud2) rather than #BP (int3): KVM's
 * instruction emulator, which runs these guests on PVM hosts, cannot execute INT3 in long mode,
 * while it raises #UD itself. */
#include "guestfw/guestfw.h"

int guest_main(void) {
  guest_printf("triplefault.elf: loading an empty IDT and executing ud2\n");
  const struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) empty_idt = {0, 0};
  __asm__ volatile("lidt %0; ud2" : : "m"(empty_idt));
  guest_halt_forever();
}
