/* guest_setjmp / guest_longjmp (see guestfw/jump.h): callee-saved registers, RSP and the return
 * address. */

  .text
  .globl guest_setjmp
  .type guest_setjmp, @function
guest_setjmp:                     /* RDI = buffer */
  mov %rbx, 0(%rdi)
  mov %rbp, 8(%rdi)
  mov %r12, 16(%rdi)
  mov %r13, 24(%rdi)
  mov %r14, 32(%rdi)
  mov %r15, 40(%rdi)
  lea 8(%rsp), %rax               /* RSP after our return */
  mov %rax, 48(%rdi)
  mov (%rsp), %rax                /* return address */
  mov %rax, 56(%rdi)
  xor %eax, %eax
  ret
  .size guest_setjmp, . - guest_setjmp

  .globl guest_longjmp
  .type guest_longjmp, @function
guest_longjmp:                    /* RDI = buffer, ESI = value */
  mov %esi, %eax
  test %eax, %eax
  jnz 1f
  inc %eax
1:
  mov 0(%rdi), %rbx
  mov 8(%rdi), %rbp
  mov 16(%rdi), %r12
  mov 24(%rdi), %r13
  mov 32(%rdi), %r14
  mov 40(%rdi), %r15
  mov 48(%rdi), %rsp
  jmp *56(%rdi)
  .size guest_longjmp, . - guest_longjmp

  .section .note.GNU-stack, "", @progbits
