/* Loads known values into every general register and RFLAGS, switches to a stack of its own (so RSP
 * is known too), then reads through a non-canonical address: #GP(0) at fault_gp_instruction. */

  .text
  .code64
  .globl fault_take_general_protection
  .type fault_take_general_protection, @function
fault_take_general_protection:
  mov $fault_stack_top, %rsp
  pushq $0x2                      /* RFLAGS: only the always-one bit */
  popfq
  movabs $0x1111111111111111, %rbx
  movabs $0x2222222222222222, %rcx
  movabs $0x3333333333333333, %rdx
  movabs $0x4444444444444444, %rsi
  movabs $0x5555555555555555, %rdi
  movabs $0x6666666666666666, %rbp
  movabs $0x8888888888888888, %r8
  movabs $0x9999999999999999, %r9
  movabs $0xaaaaaaaaaaaaaaaa, %r10
  movabs $0xbbbbbbbbbbbbbbbb, %r11
  movabs $0xcccccccccccccccc, %r12
  movabs $0xdddddddddddddddd, %r13
  movabs $0xeeeeeeeeeeeeeeee, %r14
  movabs $0xffffffffffffffff, %r15
  movabs $0x8000000000000000, %rax
  .globl fault_gp_instruction
fault_gp_instruction:
  mov (%rax), %rax
1:
  cli
  hlt
  jmp 1b
  .size fault_take_general_protection, . - fault_take_general_protection

  .bss
  .balign 16
fault_stack:
  .skip 4096
  .globl fault_stack_top
fault_stack_top:

  .section .note.GNU-stack, "", @progbits
