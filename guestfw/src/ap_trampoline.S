/* Application processor start-up. guestfw_ap_trampoline..guestfw_ap_trampoline_end is copied to
 * GUESTFW_AP_TRAMPOLINE (below 1 MiB, 4 KiB aligned) and entered there by a startup IPI in real
 * mode at CS:IP = (GUESTFW_AP_TRAMPOLINE >> 4):0. It loads the shared GDT, enters 32-bit
 * protected mode and jumps to guestfw_ap_start32 in the image, which takes the stack the BSP left
 * in guestfw_ap_boot_stack and goes to long mode the way the boot entries do
 * (guestfw_switch_to_long_mode, long_mode.S), continuing at guestfw_ap_long_mode, which calls
 * guestfw_ap_main() (smp.c). */
#include "guestfw/boot_state.h"
#include "guestfw/smp_layout.h"

  .section .rodata.guestfw_ap_trampoline, "a"
  .globl guestfw_ap_trampoline, guestfw_ap_trampoline_end
  .code16
guestfw_ap_trampoline:
  cli
  cld
  mov %cs, %ax
  mov %ax, %ds
  lgdtl (trampoline_gdt_pointer - guestfw_ap_trampoline)
  mov %cr0, %eax
  or $1, %eax                     /* PE */
  mov %eax, %cr0
  ljmpl $GUESTFW_CODE32_SELECTOR, $guestfw_ap_start32  /* the image is below 4 GiB */
  .balign 8
  .globl guestfw_ap_trampoline_gdt_pointer
guestfw_ap_trampoline_gdt_pointer: /* lgdtl in real mode: 16-bit limit, 32-bit base; smp.c fills */
trampoline_gdt_pointer:            /* it in from guestfw_gdt_pointer in the copy */
  .word 0
  .long 0
guestfw_ap_trampoline_end:

  .text
  .code32
  .type guestfw_ap_start32, @function
/* DS still has the real-mode base of the trampoline: flat first, then read the stack. */
guestfw_ap_start32:
  mov $GUESTFW_DATA_SELECTOR, %eax
  mov %eax, %ds
  mov guestfw_ap_boot_stack, %esp /* the low half: the stacks are in the image */
  mov $guestfw_ap_long_mode, %ebp
  jmp guestfw_switch_to_long_mode
  .size guestfw_ap_start32, . - guestfw_ap_start32

  .code64
  .type guestfw_ap_long_mode, @function
guestfw_ap_long_mode:
  xor %ebp, %ebp
  call guestfw_ap_main
1:
  cli
  hlt
  jmp 1b
  .size guestfw_ap_long_mode, . - guestfw_ap_long_mode

  .section .note.GNU-stack, "", @progbits
