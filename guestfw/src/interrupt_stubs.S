/* Entry stubs for vectors 32-255, 16 bytes apart starting at guestfw_interrupt_stubs. Each pushes
 * its vector and joins interrupt_common, which saves the registers the C ABI lets a callee clobber,
 * calls guestfw_interrupt_dispatch(vector) and returns with IRETQ. In their own section so that
 * images without interrupts drop them (--gc-sections). */

  .section .text.guestfw_interrupt_stubs, "ax"
  .code64
  .globl guestfw_interrupt_stubs
  .p2align 4
guestfw_interrupt_stubs:
  .set vector, 32
  .rept 224
  .p2align 4
  pushq $vector
  jmp interrupt_common
  .set vector, vector + 1
  .endr

/* The CPU aligned RSP to 16 before pushing SS; 5 + 1 + 9 quadwords and 8 bytes keep it aligned. */
interrupt_common:
  push %rax
  push %rcx
  push %rdx
  push %rsi
  push %rdi
  push %r8
  push %r9
  push %r10
  push %r11
  mov 72(%rsp), %rdi
  sub $8, %rsp
  cld
  call guestfw_interrupt_dispatch
  add $8, %rsp
  pop %r11
  pop %r10
  pop %r9
  pop %r8
  pop %rdi
  pop %rsi
  pop %rdx
  pop %rcx
  pop %rax
  add $8, %rsp
  iretq

  .section .note.GNU-stack, "", @progbits
