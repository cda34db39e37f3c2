/* Polled 16550 driver for COM1. */
#include "guestfw/serial.h"

#include "guestfw/x86.h"

enum {
  UART_DATA = 0, /* THR (write) / divisor latch low with DLAB */
  UART_INTERRUPT_ENABLE = 1,
  UART_FIFO_CONTROL = 2,
  UART_LINE_CONTROL = 3,
  UART_MODEM_CONTROL = 4,
  UART_LINE_STATUS = 5,
};
#define UART_LINE_CONTROL_DLAB 0x80
#define UART_LINE_CONTROL_8N1 0x03
#define UART_LINE_STATUS_DATA_READY 0x01
#define UART_LINE_STATUS_THR_EMPTY 0x20

void serial_init(void) {
  outb(GUESTFW_COM1 + UART_INTERRUPT_ENABLE, 0x00); /* polled: no interrupts */
  outb(GUESTFW_COM1 + UART_LINE_CONTROL, UART_LINE_CONTROL_DLAB);
  outb(GUESTFW_COM1 + UART_DATA, 0x01); /* divisor 1: 115200 baud */
  outb(GUESTFW_COM1 + UART_INTERRUPT_ENABLE, 0x00);
  outb(GUESTFW_COM1 + UART_LINE_CONTROL, UART_LINE_CONTROL_8N1);
  outb(GUESTFW_COM1 + UART_FIFO_CONTROL, 0x07);  /* enable and clear the FIFOs */
  outb(GUESTFW_COM1 + UART_MODEM_CONTROL, 0x03); /* DTR | RTS */
}

void serial_putc(char c) {
  while ((inb(GUESTFW_COM1 + UART_LINE_STATUS) & UART_LINE_STATUS_THR_EMPTY) == 0) cpu_pause();
  outb(GUESTFW_COM1 + UART_DATA, (uint8_t)c);
}

void serial_write(const char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) serial_putc(data[i]);
}

char serial_getc(void) {
  while ((inb(GUESTFW_COM1 + UART_LINE_STATUS) & UART_LINE_STATUS_DATA_READY) == 0) cpu_pause();
  return (char)inb(GUESTFW_COM1 + UART_DATA);
}
