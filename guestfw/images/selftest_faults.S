/* Code that raises one exception at a labelled instruction, so a test knows the exact RIP the CPU
 * must report. Each is a void fn(void*) for guest_catch_exception. */

  .text
  .code64

.macro faulting_function name
  .globl \name
  .type \name, @function
\name:
.endm

faulting_function selftest_raise_ud
  .globl selftest_ud_instruction
selftest_ud_instruction:
  ud2
  ret

faulting_function selftest_raise_de
  xor %ecx, %ecx
  xor %edx, %edx
  mov $1, %eax
  .globl selftest_de_instruction
selftest_de_instruction:
  div %ecx
  ret

faulting_function selftest_raise_gp
  movabs $0x8000000000000000, %rax
  .globl selftest_gp_instruction
selftest_gp_instruction:
  mov (%rax), %rax
  ret

/* RDI = address in the unmapped range above 4 GiB. */
faulting_function selftest_read_unmapped
  .globl selftest_pf_read_instruction
selftest_pf_read_instruction:
  mov (%rdi), %rax
  ret

faulting_function selftest_write_unmapped
  .globl selftest_pf_write_instruction
selftest_pf_write_instruction:
  movq $1, (%rdi)
  ret

/* ud2 for a handler that moves RIP past it: returns 1 in RAX only if execution resumed after it. */
faulting_function selftest_ud_then_return_one
  xor %eax, %eax
  ud2
  mov $1, %eax
  ret

/* int3 with R8-R11 (registers C code freely clobbers) holding known values; returns in RAX the
 * address right after the int3 and stores R8-R11 after it to out[0..3] (RDI). */
faulting_function selftest_int3_preserving_registers
  movabs $0x0808080808080808, %r8
  movabs $0x0909090909090909, %r9
  movabs $0x1010101010101010, %r10
  movabs $0x1111111111111111, %r11
  int3
  .globl selftest_after_int3
selftest_after_int3:
  mov %r8, 0(%rdi)
  mov %r9, 8(%rdi)
  mov %r10, 16(%rdi)
  mov %r11, 24(%rdi)
  lea selftest_after_int3(%rip), %rax
  ret

  .section .note.GNU-stack, "", @progbits
