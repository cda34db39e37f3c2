/* echo-irq.elf: reads one line from COM1 by interrupt (IRQ 4 through the I/O APIC, the receive
 * interrupt enabled in IER), waiting in HLT between bytes, and prints it back. */
#include "guestfw/guestfw.h"
#include "guestfw/interrupts.h"

#define COM1_IRQ 4
#define UART_IER_RECEIVED_DATA 0x01
#define UART_LSR_DATA_READY 0x01

static char line[128];
static volatile unsigned length;
static volatile bool line_done;

static void on_com1(unsigned vector) {
  (void)vector;
  while ((inb(GUESTFW_COM1 + 5) & UART_LSR_DATA_READY) != 0) {
    const char c = (char)inb(GUESTFW_COM1);
    if (line_done) continue;
    if (c == '\n' || length + 1 >= sizeof line) {
      line_done = true;
    } else {
      line[length] = c;
      length = length + 1;
    }
  }
  guest_lapic_eoi();
}

int guest_main(void) {
  guest_interrupts_init();
  guest_set_irq_handler(GUEST_ISA_VECTOR_BASE + COM1_IRQ, on_com1);
  guest_route_isa_irq(COM1_IRQ);
  outb(GUESTFW_COM1 + 1, UART_IER_RECEIVED_DATA);
  while (!line_done) guest_wait_for_interrupt();
  outb(GUESTFW_COM1 + 1, 0);
  line[length] = '\0';
  guest_printf("echo-irq: %s\n", line);
  return GUESTFW_EXIT_SUCCESS;
}
