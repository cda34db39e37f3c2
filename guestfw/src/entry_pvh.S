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
  lgdt guestfw_gdt_pointer
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
  ljmp $GUESTFW_CODE_SELECTOR, $pvh_long_mode

  .code64
pvh_long_mode:
  mov %ebx, %edi                  /* zero-extends: start_info physical address */
  xor %esi, %esi                  /* protocol: PVH */
  jmp guestfw_long_mode_start
  .size pvh_start32, . - pvh_start32

  .section .note.GNU-stack, "", @progbits
