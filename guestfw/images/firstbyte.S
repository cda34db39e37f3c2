/* firstbyte.elf: the smallest PVH image. Its first instruction already writes a byte to COM1 and
 * the next ones write the exit port, so the time from process start to the first serial byte is
 * the time a VMM takes to run the guest's first instruction (bench/vmm measures it). */
#include "guestfw/pvh_note.inc"

  pvh_note firstbyte_start

  .text
  .code32
  .globl firstbyte_start
firstbyte_start:
  mov $0x3f8, %dx                 /* COM1 THR: no LSR poll, the byte is the first exit */
  mov $'!', %al
  out %al, %dx
  mov $'\n', %al
  out %al, %dx
  mov $0xf4, %dx                  /* exit port: value 0 */
  xor %eax, %eax
  out %eax, %dx
1:
  cli
  hlt
  jmp 1b

  .section .note.GNU-stack, "", @progbits
