/* PVH entry: the ELF note that tells the loader where to start, and the 32-bit code that switches
 * to long mode. Entered in 32-bit protected mode, paging off, flat segments, interrupts off,
 * EBX = physical address of struct hvm_start_info. */
#include "guestfw/boot_state.h"
#include "guestfw/pvh_note.inc"

  pvh_note pvh_start32

  .text
  .code32
  .globl pvh_start32
  .type pvh_start32, @function
pvh_start32:
  cli
  cld
  xor %esi, %esi                  /* protocol: PVH; EBX = hvm_start_info */
  jmp guestfw_enter_long_mode
  .size pvh_start32, . - pvh_start32

  .section .note.GNU-stack, "", @progbits
