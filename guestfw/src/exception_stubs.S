/* Entry stubs for vectors 0-31. Each pushes a zero error code when the CPU does not push one, then
 * the vector, and joins the common path, which saves every general register as struct guest_frame
 * (guestfw/exceptions.h), calls guestfw_exception_dispatch(frame), restores the (possibly modified)
 * frame and returns with IRETQ. */

  .text
  .code64

.macro exception_stub vector, cpu_pushes_error_code
  .p2align 4
exception_stub_\vector:
  .if \cpu_pushes_error_code == 0
  pushq $0
  .endif
  pushq $\vector
  jmp exception_common
.endm

exception_stub 0, 0
exception_stub 1, 0
exception_stub 2, 0
exception_stub 3, 0
exception_stub 4, 0
exception_stub 5, 0
exception_stub 6, 0
exception_stub 7, 0
exception_stub 8, 1
exception_stub 9, 0
exception_stub 10, 1
exception_stub 11, 1
exception_stub 12, 1
exception_stub 13, 1
exception_stub 14, 1
exception_stub 15, 0
exception_stub 16, 0
exception_stub 17, 1
exception_stub 18, 0
exception_stub 19, 0
exception_stub 20, 0
exception_stub 21, 1
exception_stub 22, 0
exception_stub 23, 0
exception_stub 24, 0
exception_stub 25, 0
exception_stub 26, 0
exception_stub 27, 0
exception_stub 28, 0
exception_stub 29, 1
exception_stub 30, 1
exception_stub 31, 0

/* The CPU aligned RSP to 16 before pushing SS; 7 + 15 quadwords keep it aligned for the call. */
exception_common:
  push %rax
  push %rbx
  push %rcx
  push %rdx
  push %rsi
  push %rdi
  push %rbp
  push %r8
  push %r9
  push %r10
  push %r11
  push %r12
  push %r13
  push %r14
  push %r15
  cld
  mov %rsp, %rdi
  call guestfw_exception_dispatch
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %r11
  pop %r10
  pop %r9
  pop %r8
  pop %rbp
  pop %rdi
  pop %rsi
  pop %rdx
  pop %rcx
  pop %rbx
  pop %rax
  add $16, %rsp                   /* vector and error code */
  iretq

  .section .rodata
  .balign 8
  .globl guestfw_exception_stubs
guestfw_exception_stubs:
  .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  .quad exception_stub_\vector
  .endr

  .section .note.GNU-stack, "", @progbits
