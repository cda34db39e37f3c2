/* COM1: a 16550 UART at I/O port 0x3f8, 115200 8N1, polled transmit. */
#pragma once

#include <stddef.h>

#define GUESTFW_COM1 0x3f8

void serial_init(void);
/* Waits for the transmitter holding register to be empty (LSR bit 5), then sends c. Bytes go out
 * as they are: no "\n" to "\r\n" translation, so the host sees exactly what the guest wrote. */
void serial_putc(char c);
void serial_write(const char* data, size_t size);
/* Waits until a byte has been received (LSR bit 0), then returns it. */
char serial_getc(void);
