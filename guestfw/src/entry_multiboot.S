/* Multiboot (v1) entry: the header a Multiboot loader (QEMU -kernel, drvm, GRUB) looks for in the
 * first 8 KiB, and the 32-bit code that switches to long mode as the PVH path does. Entered in
 * 32-bit protected mode, paging off, flat segments, interrupts off, EAX = 0x2BADB002, EBX =
 * physical address of the Multiboot information. Built with GUESTFW_MULTIBOOT_AOUT the header also
 * carries the a.out kludge's address fields (flag 16), for images that are not ELF. */
#include "guestfw/boot_state.h"

#define MULTIBOOT_HEADER_MAGIC 0x1badb002
#define MULTIBOOT_BOOT_MAGIC 0x2badb002
/* Page-aligned modules, memory information. */
#define MULTIBOOT_BASE_FLAGS 0x00000003
#ifdef GUESTFW_MULTIBOOT_AOUT
#define MULTIBOOT_FLAGS (MULTIBOOT_BASE_FLAGS | 0x00010000)
#else
#define MULTIBOOT_FLAGS MULTIBOOT_BASE_FLAGS
#endif

  /* link.ld puts this section first in .text, well inside the first 8 KiB of the file. */
  .section .multiboot, "a"
  .balign 4
multiboot_header:
  .long MULTIBOOT_HEADER_MAGIC
  .long MULTIBOOT_FLAGS
  .long -(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_FLAGS)
#ifdef GUESTFW_MULTIBOOT_AOUT
  .long multiboot_header          /* header_addr */
  .long __image_start             /* load_addr: the file starts with .text */
  .long 0                         /* load_end_addr: 0, the whole file (objcopy -O binary ends it at
                                     the last byte of data, which no symbol marks exactly) */
  .long __image_end               /* bss_end_addr: .bss and the stack zero-filled */
  .long multiboot_start           /* entry_addr */
#endif

  .text
  .code32
  .globl multiboot_start
  .type multiboot_start, @function
multiboot_start:
  cli
  cld
  cmp $MULTIBOOT_BOOT_MAGIC, %eax
  je 1f
  xor %ebx, %ebx                  /* not a Multiboot loader: no information */
1:
  mov $GUESTFW_BOOT_MULTIBOOT, %esi  /* EBX = the Multiboot information */
  jmp guestfw_enter_long_mode
  .size multiboot_start, . - multiboot_start

  .section .note.GNU-stack, "", @progbits
