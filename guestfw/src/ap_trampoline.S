/* Application processor start-up. guestfw_ap_trampoline..guestfw_ap_trampoline_end is copied to
 * GUESTFW_AP_TRAMPOLINE (below 1 MiB, 4 KiB aligned) and entered there by a startup IPI in real
 * mode at CS:IP = (GUESTFW_AP_TRAMPOLINE >> 4):0. It loads the shared GDT, goes through 32-bit
 * protected mode to long mode on the shared identity page tables, and jumps to
 * guestfw_ap_long_mode in the image, which takes the stack the BSP left in guestfw_ap_boot_stack
 * and calls guestfw_ap_main() (smp.c). */
#include "guestfw/boot_state.h"
#include "guestfw/smp_layout.h"

#define TRAMPOLINE_ADDRESS(label) (GUESTFW_AP_TRAMPOLINE + (label - guestfw_ap_trampoline))

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
  ljmpl $GUESTFW_CODE32_SELECTOR, $TRAMPOLINE_ADDRESS(trampoline_32)
  .code32
trampoline_32:
  mov $GUESTFW_DATA_SELECTOR, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov $GUESTFW_CR4, %eax
  mov %eax, %cr4
  mov $guestfw_pml4, %eax
  mov %eax, %cr3
  mov $GUESTFW_MSR_EFER, %ecx
  mov $GUESTFW_EFER, %eax
  xor %edx, %edx
  wrmsr
  mov $GUESTFW_CR0, %eax
  mov %eax, %cr0
  ljmp $GUESTFW_CODE_SELECTOR, $guestfw_ap_long_mode
  .balign 8
  .globl guestfw_ap_trampoline_gdt_pointer
guestfw_ap_trampoline_gdt_pointer: /* lgdtl in real mode: 16-bit limit, 32-bit base; smp.c fills */
trampoline_gdt_pointer:            /* it in from guestfw_gdt_pointer in the copy */
  .word 0
  .long 0
guestfw_ap_trampoline_end:

  .text
  .code64
  .type guestfw_ap_long_mode, @function
guestfw_ap_long_mode:
  mov $GUESTFW_DATA_SELECTOR, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov %eax, %fs
  mov %eax, %gs
  mov guestfw_ap_boot_stack(%rip), %rsp
  xor %ebp, %ebp
  call guestfw_ap_main
1:
  cli
  hlt
  jmp 1b
  .size guestfw_ap_long_mode, . - guestfw_ap_long_mode

  .section .note.GNU-stack, "", @progbits
