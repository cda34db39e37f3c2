/* PVH entry: the ELF note that tells the loader where to start, and the 32-bit code that switches
 * to long mode. Entered in 32-bit protected mode, paging off, flat segments, interrupts off,
 * EBX = physical address of struct hvm_start_info. */
#include "guestfw/boot_state.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

  .section .note.pvh, "a", @note
  .balign 4
  .long 4                         /* name size: "Xen\0" */
  .long 4                         /* descriptor size */
  .long XEN_ELFNOTE_PHYS32_ENTRY
  .asciz "Xen"
  .balign 4
  .long pvh_start32
  .balign 4

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
