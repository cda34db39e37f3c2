/* ELF64 entry (images without the PVH note, drvm only): entered at e_entry already in 64-bit long
 * mode with the VMM's page tables, GDT and stack. No start_info is passed and no register carries
 * anything, so switch to guestfw's own stack, GDT, page tables and control registers at once: the
 * image then runs in exactly the state the PVH path builds. */
#include "guestfw/boot_state.h"

  .text
  .code64
  .globl elf64_start
  .type elf64_start, @function
elf64_start:
  cli
  cld
  mov $__stack_top, %rsp
  lgdt guestfw_gdt_pointer
  pushq $GUESTFW_CODE_SELECTOR
  pushq $elf64_reloaded_cs
  lretq
elf64_reloaded_cs:
  guestfw_load_data_segments
  guestfw_load_control_registers %rax
  xor %edi, %edi                  /* no start_info */
  xor %esi, %esi
  jmp guestfw_long_mode_start
  .size elf64_start, . - elf64_start

  .section .note.GNU-stack, "", @progbits
