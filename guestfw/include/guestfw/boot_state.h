/* The machine state guestfw establishes before any image code runs, shared by the assembly entry
 * code and C. Every boot path (PVH, Multiboot and ELF64) load exactly these values, so an image
 * sees the same environment under drvm and QEMU. */
#pragma once

#define GUESTFW_CODE_SELECTOR 0x08   /* 64-bit code, DPL 0 */
#define GUESTFW_DATA_SELECTOR 0x10   /* flat data, DPL 0 */
#define GUESTFW_CODE32_SELECTOR 0x18 /* flat 32-bit code, DPL 0 (APs on their way to long mode) */

#define GUESTFW_CR0 0x80000011  /* PG | ET | PE */
#define GUESTFW_CR4 0x00000020  /* PAE */
#define GUESTFW_EFER 0x00000100 /* LME (the CPU adds LMA once paging is on) */
#define GUESTFW_MSR_EFER 0xc0000080

/* How guestfw_long_mode_start's caller was booted (its RSI); RDI has the boot information. */
#define GUESTFW_BOOT_PVH 0       /* hvm_start_info (or 0 from the ELF64 entry) */
#define GUESTFW_BOOT_MULTIBOOT 1 /* the Multiboot information */

#ifdef __ASSEMBLER__
/* GNU assembler macros: not C, so not for clang-format. */
/* clang-format off */
/* 64-bit code: the flat data selector into every data segment register. */
.macro guestfw_load_data_segments
  mov $GUESTFW_DATA_SELECTOR, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov %eax, %fs
  mov %eax, %gs
.endm

/* CR4 (PAE first, which long mode requires), CR3 = the identity page tables, EFER.LME, then CR0
 * with paging: into long mode from 32-bit protected mode, or (the ELF64 entry) reloading them in
 * long mode, where the CPU keeps LMA as it is. \cr_source is %eax in 32-bit code and %rax in
 * 64-bit code. Clobbers EAX, ECX and EDX. */
.macro guestfw_load_control_registers cr_source
  mov $GUESTFW_CR4, %eax
  mov \cr_source, %cr4
  mov $guestfw_pml4, %eax
  mov \cr_source, %cr3
  mov $GUESTFW_MSR_EFER, %ecx
  mov $GUESTFW_EFER, %eax
  xor %edx, %edx
  wrmsr
  mov $GUESTFW_CR0, %eax
  mov \cr_source, %cr0
.endm
/* clang-format on */
#endif

/* Identity map: 0-4 GiB in 2 MiB pages; anything at or above 4 GiB is unmapped. */
#define GUESTFW_IDENTITY_MAP_END 0x100000000ULL
