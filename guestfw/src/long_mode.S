/* What every boot path shares: the GDT, the identity page tables (static data, so building them
 * costs the guest no instructions) and the first 64-bit code. */
#include "guestfw/boot_state.h"

  .section .data.boot_page_tables, "aw", @progbits
  .balign 4096
  .globl guestfw_pml4
guestfw_pml4:
  .quad guestfw_pdpt + 0x3        /* present, writable */
  .fill 511, 8, 0
guestfw_pdpt:
  .quad guestfw_page_directories + 0x0003
  .quad guestfw_page_directories + 0x1003
  .quad guestfw_page_directories + 0x2003
  .quad guestfw_page_directories + 0x3003
  .fill 508, 8, 0
guestfw_page_directories:         /* 2048 entries of 2 MiB: 0-4 GiB */
  .set page, 0
  .rept 2048
  .quad (page << 21) | 0x83       /* present, writable, 2 MiB page */
  .set page, page + 1
  .endr

  .data
  .balign 16
guestfw_gdt:
  .quad 0
  .quad 0x00af9a000000ffff        /* GUESTFW_CODE_SELECTOR: 64-bit code */
  .quad 0x00cf92000000ffff        /* GUESTFW_DATA_SELECTOR: flat data */
  .quad 0x00cf9a000000ffff        /* GUESTFW_CODE32_SELECTOR: flat 32-bit code (the AP trampoline) */
guestfw_gdt_end:
  .balign 8
  .globl guestfw_gdt_pointer
guestfw_gdt_pointer:              /* 32-bit lgdt reads limit + 4 bytes of base, 64-bit 8 bytes */
  .word guestfw_gdt_end - guestfw_gdt - 1
  .quad guestfw_gdt

  .text
  .code32
  .globl guestfw_enter_long_mode
  .type guestfw_enter_long_mode, @function
/* From 32-bit protected mode with paging off (the PVH and Multiboot entries): long mode with the
 * boot stack, then guestfw_long_mode_start. EBX = physical address of the boot information (or
 * 0), ESI = its protocol (GUESTFW_BOOT_*). */
guestfw_enter_long_mode:
  mov %ebx, %edi
  mov $__stack_top, %esp
  mov $guestfw_long_mode_start, %ebp
  /* falls through */
  .size guestfw_enter_long_mode, . - guestfw_enter_long_mode

  .globl guestfw_switch_to_long_mode
  .type guestfw_switch_to_long_mode, @function
/* The one way into long mode, for the boot entries and for each AP (ap_trampoline.S): from 32-bit
 * protected mode with paging off and flat DS, loads the GDT, the identity page tables and the
 * control registers, switches to 64-bit code and jumps to the address in EBP with every data
 * segment register flat and RSP = ESP. EDI and ESI are passed on as RDI and RSI (zero-extended:
 * the upper halves are undefined after the switch); EAX, ECX and EDX are clobbered. */
guestfw_switch_to_long_mode:
  lgdt guestfw_gdt_pointer
  guestfw_load_control_registers %eax
  ljmp $GUESTFW_CODE_SELECTOR, $1f
  .code64
1:
  guestfw_load_data_segments
  mov %esp, %esp                  /* zero-extends, as each of these */
  mov %edi, %edi
  mov %esi, %esi
  mov %ebp, %ebp
  jmp *%rbp
  .size guestfw_switch_to_long_mode, . - guestfw_switch_to_long_mode

  .globl guestfw_long_mode_start
  .type guestfw_long_mode_start, @function
/* In long mode on guestfw's GDT (flat data segments loaded) with RSP = __stack_top. RDI = physical
 * address of the boot information (hvm_start_info, or the Multiboot information when RSI = 1), or
 * 0. RSI survives the .bss clearing (rep stosq uses RDI, RCX, RAX). */
guestfw_long_mode_start:
  mov %rdi, %rbx
  mov $__bss_start, %edi
  mov $__bss_end, %ecx
  sub %edi, %ecx
  shr $3, %ecx
  xor %eax, %eax
  rep stosq
  mov %rbx, %rdi
  xor %ebp, %ebp
  call guestfw_start
1:
  cli
  hlt
  jmp 1b
  .size guestfw_long_mode_start, . - guestfw_long_mode_start

  .section .note.GNU-stack, "", @progbits
